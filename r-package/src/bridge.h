/* pydlr's Arrow C Data Interface for R vectors: shared declarations of the bridge's C files. */
#ifndef PYDLR_BRIDGE_H
#define PYDLR_BRIDGE_H

#define R_NO_REMAP
#include <R.h>
#include <Rinternals.h>

#include "arrow_c.h"

/* Export modes: faithful Arrow types (NA as nulls, logical as bits, factors as dictionaries, dates,
 * times), or plain numbers for tensors (doubles as they are: NA is a NaN; integers and logicals as
 * int32; factors as 0-based codes). */
enum { PYDLR_MODE_ARROW = 0, PYDLR_MODE_TENSOR = 1 };
/* What the exported top level is: one array, a data.frame as a struct, a matrix as a struct of columns. */
enum { PYDLR_TOP_VECTOR = 0, PYDLR_TOP_DATA_FRAME = 1, PYDLR_TOP_MATRIX_COLUMNS = 2 };

/* A pair of structs owned by an external pointer; its finalizer releases whatever is still unreleased. */
typedef struct {
  struct ArrowSchema schema;
  struct ArrowArray array;
} pydlr_shells;

SEXP pydlr_new_shells_sexp(pydlr_shells** out);
pydlr_shells* pydlr_shells_from_sexp(SEXP xp);

/* .Call entry points */
SEXP pydlr_c_export(SEXP x, SEXP mode, SEXP top, SEXP nrow, SEXP names);
SEXP pydlr_c_new_shells(void);
SEXP pydlr_c_free_shells(SEXP xp);
SEXP pydlr_c_release_at(SEXP addresses);
SEXP pydlr_c_import(SEXP addresses, SEXP shape, SEXP c_order);
SEXP pydlr_c_preserved(SEXP drain);
SEXP pydlr_c_data_address(SEXP x);
SEXP pydlr_c_with_gil(SEXP fun, SEXP env);

#endif
