/* R vectors and data.frames to the Arrow C Data Interface.
 *
 * Buffers point at R's own memory where Arrow's layout is R's layout (doubles, integers; for those with
 * NAs only a validity bitmap is allocated). Everything else is converted into buffers this file owns:
 * logical values (Arrow packs booleans in bits), factor codes (0-based), strings (offsets + UTF-8 bytes),
 * Dates (int32 days) and POSIXct (int64 microseconds: a copy, since R stores double seconds).
 *
 * Ownership: every exported array (and child, and dictionary) keeps the R vector it borrows from alive
 * through pydlr_preserve(); its release callback frees what it owns and hands the R object back through
 * pydlr_unpreserve(), which never calls R off R's main thread. The R side validates input and writes
 * the messages users see (R/bridge.R); the checks here only guard against misuse of the entry point.
 * Allocation failures raise an R error; whatever was built hangs off the shells' external pointer, whose
 * finalizer releases it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "preserve.h"

typedef struct {
  SEXP keep; /* preserve handle of the R vector borrowed from, or NULL */
  void* owned[3];
  const void* buffers[3];
  struct ArrowArray** children;
  int64_t n_children;
  struct ArrowArray* dictionary;
} array_private;

typedef struct {
  char* format;
  char* name;
  struct ArrowSchema** children;
  int64_t n_children;
  struct ArrowSchema* dictionary;
} schema_private;

static void* checked_calloc(size_t n, size_t size) {
  void* p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) Rf_error("pydlr bridge: out of memory (%.0f bytes)", (double)n * (double)size);
  return p;
}

static void* checked_malloc(size_t size) {
  void* p = malloc(size ? size : 1);
  if (p == NULL) Rf_error("pydlr bridge: out of memory (%.0f bytes)", (double)size);
  return p;
}

static char* checked_strdup(const char* s) {
  char* p = checked_calloc(strlen(s) + 1, 1);
  memcpy(p, s, strlen(s));
  return p;
}

/* ---- release callbacks (may run on any thread: no R API here, only pydlr_unpreserve) ---- */

static void release_array(struct ArrowArray* a) {
  array_private* p = a->private_data;
  if (p != NULL) {
    for (int64_t i = 0; i < p->n_children; i++) {
      struct ArrowArray* child = p->children[i];
      if (child == NULL) continue;
      if (child->release != NULL) child->release(child);
      free(child);
    }
    free(p->children);
    if (p->dictionary != NULL) {
      if (p->dictionary->release != NULL) p->dictionary->release(p->dictionary);
      free(p->dictionary);
    }
    for (int k = 0; k < 3; k++) free(p->owned[k]);
    if (p->keep != NULL) pydlr_unpreserve(p->keep);
    free(p);
  }
  a->private_data = NULL;
  a->release = NULL;
}

static void release_schema(struct ArrowSchema* s) {
  schema_private* p = s->private_data;
  if (p != NULL) {
    for (int64_t i = 0; i < p->n_children; i++) {
      struct ArrowSchema* child = p->children[i];
      if (child == NULL) continue;
      if (child->release != NULL) child->release(child);
      free(child);
    }
    free(p->children);
    if (p->dictionary != NULL) {
      if (p->dictionary->release != NULL) p->dictionary->release(p->dictionary);
      free(p->dictionary);
    }
    free(p->format);
    free(p->name);
    free(p);
  }
  s->private_data = NULL;
  s->release = NULL;
}

/* ---- struct set-up: release is set first, so a half-built struct is always releasable ---- */

static array_private* init_array(struct ArrowArray* a, int64_t n_buffers, int64_t length) {
  memset(a, 0, sizeof *a);
  array_private* p = checked_calloc(1, sizeof *p);
  a->private_data = p;
  a->release = release_array;
  a->n_buffers = n_buffers;
  a->buffers = p->buffers;
  a->length = length;
  return p;
}

static schema_private* init_schema(struct ArrowSchema* s, const char* format, const char* name,
                                   int64_t flags) {
  memset(s, 0, sizeof *s);
  schema_private* p = checked_calloc(1, sizeof *p);
  s->private_data = p;
  s->release = release_schema;
  p->format = checked_strdup(format);
  s->format = p->format;
  p->name = checked_strdup(name);
  s->name = p->name;
  s->flags = flags;
  return p;
}

static void alloc_children(struct ArrowSchema* s, struct ArrowArray* a, int64_t n) {
  schema_private* sp = s->private_data;
  array_private* ap = a->private_data;
  sp->children = checked_calloc(n, sizeof(struct ArrowSchema*));
  sp->n_children = n;
  ap->children = checked_calloc(n, sizeof(struct ArrowArray*));
  ap->n_children = n;
  for (int64_t i = 0; i < n; i++) {
    sp->children[i] = checked_calloc(1, sizeof(struct ArrowSchema));
    ap->children[i] = checked_calloc(1, sizeof(struct ArrowArray));
  }
  s->children = sp->children;
  s->n_children = n;
  a->children = ap->children;
  a->n_children = n;
}

/* ---- bitmaps (one helper for every validity buffer) ---- */

/* Whether element i is missing: NA for plain doubles (NaN is a value), any NaN for dates and times
 * (nan_is_null), NA for integers, logicals and strings. Typed pointers are fetched once per vector. */
typedef struct {
  int type, nan_is_null;
  const double* dbl;
  const int* ints;
  const SEXP* strs;
} missing_probe;

static missing_probe probe_for(SEXP x, int nan_is_null) {
  missing_probe p = {TYPEOF(x), nan_is_null, NULL, NULL, NULL};
  if (p.type == REALSXP) p.dbl = REAL_RO(x);
  if (p.type == INTSXP || p.type == LGLSXP) p.ints = INTEGER_RO(x);
  if (p.type == STRSXP) p.strs = STRING_PTR_RO(x);
  return p;
}

/* R's NA_real_ is a NaN whose low word is 1954 (R_IsNA without a function call). */
static inline int is_r_na(double v) {
  if (!ISNAN(v)) return 0;
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  return (uint32_t)(bits & 0xFFFFFFFFu) == 1954u;
}

static inline int is_missing(const missing_probe* p, R_xlen_t i) {
  switch (p->type) {
    case REALSXP:
      return p->nan_is_null ? ISNAN(p->dbl[i]) : is_r_na(p->dbl[i]);
    case INTSXP:
    case LGLSXP:
      return p->ints[i] == NA_INTEGER;
    case STRSXP:
      return p->strs[i] == NA_STRING;
    default:
      return 0;
  }
}

/* Validity bitmap of x[off, off + n): NULL when nothing is missing (no allocation then). */
static uint8_t* validity_bitmap(SEXP x, R_xlen_t off, R_xlen_t n, int nan_is_null,
                                int64_t* null_count) {
  missing_probe p = probe_for(x, nan_is_null);
  *null_count = 0;
  R_xlen_t first = -1;
  for (R_xlen_t i = 0; i < n; i++) {
    if (is_missing(&p, off + i)) {
      first = i;
      break;
    }
  }
  if (first < 0) return NULL;
  uint8_t* bits = checked_calloc((size_t)(n + 7) / 8, 1);
  memset(bits, 0xFF, (size_t)first / 8);
  for (R_xlen_t i = (first / 8) * 8; i < n; i++) {
    if (is_missing(&p, off + i)) {
      (*null_count)++;
    } else {
      bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
  }
  return bits;
}

static void set_validity(SEXP x, R_xlen_t off, R_xlen_t n, int nan_is_null, struct ArrowArray* a) {
  array_private* p = a->private_data;
  p->owned[0] = validity_bitmap(x, off, n, nan_is_null, &a->null_count);
  p->buffers[0] = p->owned[0];
}

/* ---- strings ---- */

/* UTF-8 bytes of a CHARSXP; *len its length. Translation (R_alloc'ed, freed when the .Call returns)
 * only happens for strings in another encoding. */
static inline const char* utf8_bytes(SEXP s, size_t* len) {
  const char* text = Rf_translateCharUTF8(s);
  *len = (text == CHAR(s)) ? (size_t)LENGTH(s) : strlen(text);
  return text;
}

/* Sets bit i of a validity bitmap allocated on the first null (bits before it are all valid). */
static void mark_null(struct ArrowArray* a, R_xlen_t n, R_xlen_t i) {
  array_private* p = a->private_data;
  if (p->owned[0] == NULL) {
    uint8_t* bits = checked_calloc((size_t)(n + 7) / 8, 1);
    memset(bits, 0xFF, (size_t)(n + 7) / 8);
    p->owned[0] = bits;
    p->buffers[0] = bits;
  }
  ((uint8_t*)p->owned[0])[i >> 3] &= (uint8_t)~(1u << (i & 7));
  a->null_count++;
}

/* Fills a utf8 ("u", int32 offsets) or large utf8 ("U", int64) array from x[off, off + n) in one
 * pass over R's strings (each CHARSXP is visited once: they are scattered in memory); returns the
 * format. Offsets are collected as int64 and narrowed in place when the bytes fit int32 offsets. */
static const char* fill_strings(SEXP x, R_xlen_t off, R_xlen_t n, struct ArrowArray* a) {
  array_private* p = a->private_data;
  const SEXP* strs = STRING_PTR_RO(x) + off;
  int64_t* offsets = checked_malloc(((size_t)n + 1) * sizeof(int64_t));
  p->owned[1] = offsets;
  offsets[0] = 0;
  size_t cap = (size_t)n * 8 + 64, pos = 0, len; /* malloc: untouched pages cost nothing */
  p->owned[2] = checked_malloc(cap);
  /* R keeps one CHARSXP per distinct string: a small direct-mapped cache of (CHARSXP, bytes) skips the
   * R API calls for repeated values (category-like columns). */
  enum { CACHE_SIZE = 256 };
  SEXP cached[CACHE_SIZE] = {0};
  const char* cached_text[CACHE_SIZE];
  size_t cached_len[CACHE_SIZE];
  for (R_xlen_t i = 0; i < n; i++) {
    SEXP s = strs[i];
    if (s == NA_STRING) {
      mark_null(a, n, i);
    } else {
      size_t slot = ((uintptr_t)s >> 4) & (CACHE_SIZE - 1);
      const char* text;
      if (cached[slot] == s) {
        text = cached_text[slot];
        len = cached_len[slot];
      } else {
        text = utf8_bytes(s, &len);
        cached[slot] = s;
        cached_text[slot] = text;
        cached_len[slot] = len;
      }
      if (pos + len > cap) {
        size_t grown = 2 * cap > pos + len ? 2 * cap : pos + len;
        char* bigger = realloc(p->owned[2], grown);
        if (bigger == NULL) Rf_error("pydlr bridge: out of memory (%.0f bytes)", (double)grown);
        p->owned[2] = bigger;
        cap = grown;
      }
      memcpy((char*)p->owned[2] + pos, text, len);
      pos += len;
    }
    offsets[i + 1] = (int64_t)pos;
  }
  int large = pos > (size_t)INT32_MAX;
  if (!large) { /* narrow in place: element i is written at byte 4i, after reading byte 8i */
    for (R_xlen_t i = 0; i <= n; i++) {
      int32_t v = (int32_t)offsets[i];
      memcpy((char*)offsets + 4 * i, &v, sizeof v); /* char access: no aliasing assumptions */
    }
  }
  p->buffers[1] = p->owned[1];
  p->buffers[2] = p->owned[2];
  return large ? "U" : "u";
}

/* ---- one column ---- */

typedef enum { K_DOUBLE, K_INTEGER, K_LOGICAL, K_FACTOR, K_CHARACTER, K_DATE, K_POSIXCT } column_kind;

static column_kind kind_of(SEXP x, int mode) {
  if (Rf_isFactor(x)) return K_FACTOR;
  if (Rf_inherits(x, "Date") && (TYPEOF(x) == REALSXP || TYPEOF(x) == INTSXP)) return K_DATE;
  if (Rf_inherits(x, "POSIXct") && TYPEOF(x) == REALSXP) return K_POSIXCT;
  switch (TYPEOF(x)) {
    case REALSXP:
      return K_DOUBLE;
    case INTSXP:
      return K_INTEGER;
    case LGLSXP:
      return K_LOGICAL;
    case STRSXP:
      if (mode == PYDLR_MODE_ARROW) return K_CHARACTER;
      break;
    default:
      break;
  }
  Rf_error("pydlr bridge: cannot export an R object of type '%s' (validate in R first)",
           Rf_type2char(TYPEOF(x)));
  return K_DOUBLE; /* not reached */
}

static void export_levels(SEXP levels, struct ArrowSchema* s, struct ArrowArray* a) {
  R_xlen_t n = XLENGTH(levels);
  init_array(a, 3, n);
  const char* format = fill_strings(levels, 0, n, a);
  init_schema(s, format, "", 0);
}

static void export_factor(SEXP x, R_xlen_t off, R_xlen_t n, int mode, struct ArrowSchema* s,
                          struct ArrowArray* a) {
  array_private* p = a->private_data;
  const int* codes = INTEGER_RO(x) + off;
  int32_t* idx = checked_malloc((size_t)n * sizeof(int32_t));
  p->owned[1] = idx;
  p->buffers[1] = idx;
  SEXP levels = Rf_getAttrib(x, R_LevelsSymbol);
  if (TYPEOF(levels) != STRSXP) Rf_error("pydlr bridge: factor levels must be character");
  /* An index past the dictionary would make every Arrow reader read past its end. */
  R_xlen_t n_levels = XLENGTH(levels);
  for (R_xlen_t i = 0; i < n; i++) {
    if (codes[i] != NA_INTEGER && (codes[i] < 1 || codes[i] > n_levels)) {
      Rf_error("pydlr bridge: factor code %d outside its %ld levels", codes[i], (long)n_levels);
    }
    idx[i] = codes[i] == NA_INTEGER ? 0 : codes[i] - 1;
  }
  if (mode == PYDLR_MODE_TENSOR) return;
  set_validity(x, off, n, 0, a);
  if (Rf_inherits(x, "ordered")) s->flags |= ARROW_FLAG_DICTIONARY_ORDERED;
  schema_private* sp = s->private_data;
  sp->dictionary = checked_calloc(1, sizeof(struct ArrowSchema));
  s->dictionary = sp->dictionary;
  p->dictionary = checked_calloc(1, sizeof(struct ArrowArray));
  a->dictionary = p->dictionary;
  export_levels(levels, s->dictionary, a->dictionary); /* copied: nothing of R's to keep alive */
}

static void export_logical_bits(SEXP x, R_xlen_t off, R_xlen_t n, struct ArrowArray* a) {
  array_private* p = a->private_data;
  const int* v = LOGICAL_RO(x) + off;
  uint8_t* bits = checked_calloc((size_t)(n + 7) / 8, 1);
  p->owned[1] = bits;
  p->buffers[1] = bits;
  for (R_xlen_t i = 0; i < n; i++) {
    if (v[i] != NA_LOGICAL && v[i] != 0) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
  }
  set_validity(x, off, n, 0, a);
}

static void export_date(SEXP x, R_xlen_t off, R_xlen_t n, struct ArrowArray* a) {
  array_private* p = a->private_data;
  int32_t* days = checked_malloc((size_t)n * sizeof(int32_t));
  p->owned[1] = days;
  p->buffers[1] = days;
  if (TYPEOF(x) == INTSXP) {
    const int* v = INTEGER_RO(x) + off;
    for (R_xlen_t i = 0; i < n; i++) days[i] = v[i] == NA_INTEGER ? 0 : v[i];
  } else {
    const double* v = REAL_RO(x) + off;
    for (R_xlen_t i = 0; i < n; i++) {
      /* out of int32's range the conversion is undefined behaviour */
      if (!ISNAN(v[i]) && !(fabs(v[i]) <= 2147483647.0)) Rf_error("pydlr bridge: a Date beyond Arrow's date32 range");
      days[i] = ISNAN(v[i]) ? 0 : (int32_t)floor(v[i]);
    }
  }
  set_validity(x, off, n, 1, a);
}

static void export_posixct(SEXP x, R_xlen_t off, R_xlen_t n, struct ArrowArray* a) {
  array_private* p = a->private_data;
  int64_t* micros = checked_malloc((size_t)n * sizeof(int64_t));
  p->owned[1] = micros;
  p->buffers[1] = micros;
  const double* v = REAL_RO(x) + off;
  for (R_xlen_t i = 0; i < n; i++) {
    if (!ISNAN(v[i]) && !(fabs(v[i]) <= 9.2e12)) Rf_error("pydlr bridge: a POSIXct beyond Arrow's int64 microseconds");
    micros[i] = ISNAN(v[i]) ? 0 : llround(v[i] * 1e6);
  }
  set_validity(x, off, n, 1, a);
}

/* Time zone of a POSIXct for Arrow's "tsu:<tz>"; R's "" (the session's local zone) becomes UTC. */
static const char* posixct_zone(SEXP x) {
  SEXP tz = Rf_getAttrib(x, Rf_install("tzone"));
  if (TYPEOF(tz) == STRSXP && XLENGTH(tz) > 0 && STRING_ELT(tz, 0) != NA_STRING &&
      LENGTH(STRING_ELT(tz, 0)) > 0) {
    return Rf_translateCharUTF8(STRING_ELT(tz, 0));
  }
  return "UTC";
}

/* Exports x[off, off + n) as one Arrow array (s, a must be zeroed or released structs). */
static void export_column(SEXP x, R_xlen_t off, R_xlen_t n, int mode, const char* name,
                          struct ArrowSchema* s, struct ArrowArray* a) {
  column_kind kind = kind_of(x, mode);
  array_private* p = init_array(a, kind == K_CHARACTER ? 3 : 2, n);
  switch (kind) {
    case K_DOUBLE:
      init_schema(s, "g", name, ARROW_FLAG_NULLABLE);
      p->buffers[1] = n ? (const void*)(REAL(x) + off) : NULL;
      p->keep = pydlr_preserve(x);
      if (mode == PYDLR_MODE_ARROW) set_validity(x, off, n, 0, a);
      break;
    case K_INTEGER:
      init_schema(s, "i", name, ARROW_FLAG_NULLABLE);
      p->buffers[1] = n ? (const void*)(INTEGER(x) + off) : NULL;
      p->keep = pydlr_preserve(x);
      if (mode == PYDLR_MODE_ARROW) set_validity(x, off, n, 0, a);
      break;
    case K_LOGICAL:
      if (mode == PYDLR_MODE_TENSOR) { /* R's logical is int32: zero-copy as "i" */
        init_schema(s, "i", name, ARROW_FLAG_NULLABLE);
        p->buffers[1] = n ? (const void*)(LOGICAL(x) + off) : NULL;
        p->keep = pydlr_preserve(x);
      } else {
        init_schema(s, "b", name, ARROW_FLAG_NULLABLE);
        export_logical_bits(x, off, n, a);
      }
      break;
    case K_FACTOR:
      init_schema(s, "i", name, ARROW_FLAG_NULLABLE);
      export_factor(x, off, n, mode, s, a);
      break;
    case K_CHARACTER: {
      const char* format = fill_strings(x, off, n, a);
      init_schema(s, format, name, ARROW_FLAG_NULLABLE);
      break;
    }
    case K_DATE:
      init_schema(s, "tdD", name, ARROW_FLAG_NULLABLE);
      export_date(x, off, n, a);
      break;
    case K_POSIXCT: {
      const char* zone = posixct_zone(x);
      char* format = checked_calloc(strlen(zone) + 5, 1);
      memcpy(format, "tsu:", 4);
      memcpy(format + 4, zone, strlen(zone));
      schema_private* sp = init_schema(s, "", name, ARROW_FLAG_NULLABLE);
      free(sp->format);
      sp->format = format;
      s->format = format;
      export_posixct(x, off, n, a);
      break;
    }
  }
}

/* ---- shells: the top-level structs, owned by an external pointer until Python moves them ---- */

static void shells_finalize(SEXP xp) {
  pydlr_shells* sh = R_ExternalPtrAddr(xp);
  if (sh == NULL) return;
  if (sh->array.release != NULL) sh->array.release(&sh->array);
  if (sh->schema.release != NULL) sh->schema.release(&sh->schema);
  free(sh);
  R_ClearExternalPtr(xp);
}

SEXP pydlr_new_shells_sexp(pydlr_shells** out) {
  pydlr_shells* sh = checked_calloc(1, sizeof *sh);
  SEXP xp = PROTECT(R_MakeExternalPtr(sh, Rf_install("pydlr_arrow_shells"), R_NilValue));
  R_RegisterCFinalizerEx(xp, shells_finalize, FALSE);
  *out = sh;
  UNPROTECT(1);
  return xp;
}

pydlr_shells* pydlr_shells_from_sexp(SEXP xp) {
  if (TYPEOF(xp) != EXTPTRSXP || R_ExternalPtrTag(xp) != Rf_install("pydlr_arrow_shells")) {
    Rf_error("pydlr bridge: expected the external pointer of Arrow shells");
  }
  pydlr_shells* sh = R_ExternalPtrAddr(xp);
  if (sh == NULL) Rf_error("pydlr bridge: these Arrow shells were already freed");
  return sh;
}

/* list(shells external pointer, c(schema address, array address)) */
static SEXP shells_result(SEXP xp, pydlr_shells* sh) {
  SEXP out = PROTECT(Rf_allocVector(VECSXP, 2));
  SET_VECTOR_ELT(out, 0, xp);
  SEXP addr = Rf_allocVector(REALSXP, 2);
  SET_VECTOR_ELT(out, 1, addr);
  REAL(addr)[0] = (double)(uintptr_t)&sh->schema;
  REAL(addr)[1] = (double)(uintptr_t)&sh->array;
  UNPROTECT(1);
  return out;
}

SEXP pydlr_c_new_shells(void) {
  pydlr_drain_released();
  pydlr_shells* sh;
  SEXP xp = PROTECT(pydlr_new_shells_sexp(&sh));
  SEXP out = shells_result(xp, sh);
  UNPROTECT(1);
  return out;
}

SEXP pydlr_c_free_shells(SEXP xp) {
  if (TYPEOF(xp) == EXTPTRSXP && R_ExternalPtrAddr(xp) != NULL) shells_finalize(xp);
  pydlr_drain_released();
  return R_NilValue;
}

static const char* name_at(SEXP names, R_xlen_t i) {
  if (TYPEOF(names) != STRSXP || i >= XLENGTH(names) || STRING_ELT(names, i) == NA_STRING) return "";
  return Rf_translateCharUTF8(STRING_ELT(names, i));
}

/* Exports x. top: PYDLR_TOP_VECTOR (x as one array, matrices and arrays flattened in R's column-major
 * order: the caller sends dim separately), PYDLR_TOP_DATA_FRAME (a struct of the columns: a record
 * batch), PYDLR_TOP_MATRIX_COLUMNS (a struct whose children are the matrix's columns, zero-copy).
 * Returns list(shells, c(schema address, array address)). */
SEXP pydlr_c_export(SEXP x, SEXP mode_, SEXP top_, SEXP nrow_, SEXP names) {
  int mode = Rf_asInteger(mode_), top = Rf_asInteger(top_);
  R_xlen_t nrow = (R_xlen_t)Rf_asReal(nrow_);
  pydlr_drain_released();
  pydlr_shells* sh;
  SEXP xp = PROTECT(pydlr_new_shells_sexp(&sh));
  if (top == PYDLR_TOP_VECTOR) {
    export_column(x, 0, XLENGTH(x), mode, "", &sh->schema, &sh->array);
  } else {
    R_xlen_t ncol;
    if (top == PYDLR_TOP_DATA_FRAME) {
      if (TYPEOF(x) != VECSXP) Rf_error("pydlr bridge: a data.frame must be a list");
      ncol = XLENGTH(x);
    } else {
      if (!Rf_isMatrix(x)) Rf_error("pydlr bridge: expected a matrix");
      ncol = Rf_ncols(x);
      nrow = Rf_nrows(x);
    }
    init_array(&sh->array, 1, nrow);
    init_schema(&sh->schema, "+s", "", 0);
    alloc_children(&sh->schema, &sh->array, ncol);
    for (R_xlen_t j = 0; j < ncol; j++) {
      SEXP col = top == PYDLR_TOP_DATA_FRAME ? VECTOR_ELT(x, j) : x;
      R_xlen_t off = top == PYDLR_TOP_DATA_FRAME ? 0 : j * nrow;
      if (top == PYDLR_TOP_DATA_FRAME && XLENGTH(col) != nrow) {
        Rf_error("pydlr bridge: column %ld has %ld rows, expected %ld", (long)j + 1,
                 (long)XLENGTH(col), (long)nrow);
      }
      export_column(col, off, nrow, mode, name_at(names, j), sh->schema.children[j],
                    sh->array.children[j]);
    }
  }
  SEXP out = shells_result(xp, sh);
  UNPROTECT(1);
  return out;
}

SEXP pydlr_c_preserved(SEXP drain) {
  if (Rf_asLogical(drain) == TRUE) pydlr_drain_released();
  SEXP out = PROTECT(Rf_allocVector(REALSXP, 2));
  REAL(out)[0] = pydlr_preserved_count();
  REAL(out)[1] = pydlr_pending_count();
  UNPROTECT(1);
  return out;
}

SEXP pydlr_c_data_address(SEXP x) {
  switch (TYPEOF(x)) {
    case REALSXP:
    case INTSXP:
    case LGLSXP:
    case RAWSXP:
    case CPLXSXP:
      return Rf_ScalarReal((double)(uintptr_t)DATAPTR(x));
    default:
      Rf_error("pydlr bridge: no data address for an R object of type '%s'", Rf_type2char(TYPEOF(x)));
  }
  return R_NilValue; /* not reached */
}
