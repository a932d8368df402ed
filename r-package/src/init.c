/* Registration of pydlr's native routines (R's .Call interface). */
#define R_NO_REMAP
#include <R.h>
#include <R_ext/Rdynload.h>
#include <R_ext/Visibility.h>
#include <Rinternals.h>

#include "bridge.h"
#include "preserve.h"

static const R_CallMethodDef call_methods[] = {
    {"C_bridge_export", (DL_FUNC)&pydlr_c_export, 5},
    {"C_bridge_new_shells", (DL_FUNC)&pydlr_c_new_shells, 0},
    {"C_bridge_free_shells", (DL_FUNC)&pydlr_c_free_shells, 1},
    {"C_bridge_release_at", (DL_FUNC)&pydlr_c_release_at, 1},
    {"C_bridge_import", (DL_FUNC)&pydlr_c_import, 3},
    {"C_bridge_preserved", (DL_FUNC)&pydlr_c_preserved, 1},
    {"C_bridge_data_address", (DL_FUNC)&pydlr_c_data_address, 1},
    {"C_bridge_with_gil", (DL_FUNC)&pydlr_c_with_gil, 2},
    {NULL, NULL, 0}};

void attribute_visible R_init_pydlr(DllInfo* dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
  R_forceSymbols(dll, TRUE);
  pydlr_preserve_init();
}
