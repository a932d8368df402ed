/* Evaluating R code with Python's GIL held, for R embedded in Python by rpy2.
 *
 * rpy2 (through cffi) releases Python's GIL while R runs. reticulate 1.28 assumes the thread calling
 * into Python holds it (true when R is the main program: reticulate takes it once and keeps it), so R
 * code that rpy2 runs and that calls Python through reticulate runs Python without the GIL: torch, which
 * releases and re-takes the GIL around its kernels, then corrupts the thread state and the process
 * aborts ("PyThreadState_Get: ... the GIL is released"). pydlr.r runs R code through this wrapper,
 * which takes the GIL (PyGILState_Ensure: a no-op when the thread holds it already) and gives it back
 * however the code exits (R_UnwindProtect). Python's symbols are looked up in the process at run time:
 * the R package does not link to Python. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_DEFAULT */
#endif
#include <dlfcn.h>

#include "bridge.h"

typedef int (*gil_ensure_fn)(void);
typedef void (*gil_release_fn)(int);
typedef int (*is_initialized_fn)(void);

typedef struct {
  SEXP call, env;
} eval_data;

typedef struct {
  gil_release_fn release;
  int state;
} gil_data;

static SEXP eval_body(void* data) {
  eval_data* d = data;
  return Rf_eval(d->call, d->env);
}

static void release_gil(void* data, Rboolean jump) {
  gil_data* g = data;
  g->release(g->state);
}

/* Calls the R function `fun` (no arguments) with the GIL held when Python runs in this process. */
SEXP pydlr_c_with_gil(SEXP fun, SEXP env) {
  SEXP call = PROTECT(Rf_lang1(fun));
  is_initialized_fn initialized = (is_initialized_fn)dlsym(RTLD_DEFAULT, "Py_IsInitialized");
  gil_ensure_fn ensure = (gil_ensure_fn)dlsym(RTLD_DEFAULT, "PyGILState_Ensure");
  gil_release_fn release = (gil_release_fn)dlsym(RTLD_DEFAULT, "PyGILState_Release");
  if (initialized == NULL || ensure == NULL || release == NULL || !initialized()) {
    SEXP out = Rf_eval(call, env);
    UNPROTECT(1);
    return out;
  }
  eval_data d = {call, env};
  gil_data g = {release, ensure()};
  SEXP cont = PROTECT(R_MakeUnwindCont());
  SEXP out = R_UnwindProtect(eval_body, &d, release_gil, &g, cont);
  UNPROTECT(2);
  return out;
}
