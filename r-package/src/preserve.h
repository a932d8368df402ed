/* Keeping R objects alive while a foreign owner (Python) holds views of their memory. */
#ifndef PYDLR_PRESERVE_H
#define PYDLR_PRESERVE_H

#define R_NO_REMAP
#include <R.h>
#include <Rinternals.h>

/* Called once from R_init_pydlr, on R's main thread. */
void pydlr_preserve_init(void);
/* Keeps `x` alive; returns a handle for pydlr_unpreserve. Main thread only (allocates). */
SEXP pydlr_preserve(SEXP x);
/* Drops the handle. Safe from any thread: off R's main thread the handle is queued and
 * released by the next pydlr_drain_released() on the main thread. Never calls R there. */
void pydlr_unpreserve(SEXP handle);
/* Releases queued handles; main thread only. Returns how many were released. */
int pydlr_drain_released(void);
/* Number of R objects currently kept alive for foreign owners (queued ones included). */
double pydlr_preserved_count(void);
/* Number of handles queued by other threads and not yet released. */
double pydlr_pending_count(void);

#endif
