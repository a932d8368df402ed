/* A registry of R objects kept alive for Python, O(1) to add and remove.
 *
 * Each preserved object hangs in a cell of a doubly linked pairlist rooted at one R_PreserveObject'ed
 * head (CAR = previous cell, CDR = next cell, TAG = the object), so releasing is an unlink and does not
 * scan R's precious list. Releases may come from any thread (pyarrow, torch or a Python thread may drop
 * the last reference): R's API is single-threaded, so off the main thread the cell only goes onto a
 * mutex-guarded queue that the main thread empties at the next bridge call. */
#include "preserve.h"

#include <pthread.h>
#include <stdlib.h>

static SEXP registry_head = NULL;
static pthread_t main_thread;
static double live = 0; /* touched on the main thread only */

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static SEXP* queue = NULL;
static size_t queue_len = 0, queue_cap = 0;

void pydlr_preserve_init(void) {
  main_thread = pthread_self();
  if (registry_head == NULL) {
    registry_head = Rf_cons(R_NilValue, R_NilValue);
    R_PreserveObject(registry_head);
  }
}

SEXP pydlr_preserve(SEXP x) {
  /* Allocate before reading the list: a GC here may run finalizers that unlink other cells. */
  SEXP cell = PROTECT(Rf_cons(registry_head, R_NilValue));
  SET_TAG(cell, x);
  SEXP next = CDR(registry_head);
  SETCDR(cell, next);
  if (next != R_NilValue) SETCAR(next, cell);
  SETCDR(registry_head, cell);
  live += 1;
  UNPROTECT(1);
  return cell;
}

static void unlink_cell(SEXP cell) {
  SEXP prev = CAR(cell), next = CDR(cell);
  SETCDR(prev, next);
  if (next != R_NilValue) SETCAR(next, prev);
  SETCAR(cell, R_NilValue);
  SETCDR(cell, R_NilValue);
  SET_TAG(cell, R_NilValue);
  live -= 1;
}

void pydlr_unpreserve(SEXP cell) {
  if (cell == NULL) return;
  if (pthread_equal(pthread_self(), main_thread)) {
    unlink_cell(cell);
    return;
  }
  pthread_mutex_lock(&queue_lock);
  if (queue_len == queue_cap) {
    size_t cap = queue_cap ? 2 * queue_cap : 64;
    SEXP* grown = realloc(queue, cap * sizeof(SEXP));
    if (grown == NULL) { /* out of memory: keeping the object alive (a leak) is the only safe choice */
      pthread_mutex_unlock(&queue_lock);
      return;
    }
    queue = grown;
    queue_cap = cap;
  }
  queue[queue_len++] = cell;
  pthread_mutex_unlock(&queue_lock);
}

int pydlr_drain_released(void) {
  if (!pthread_equal(pthread_self(), main_thread)) return 0;
  pthread_mutex_lock(&queue_lock);
  size_t n = queue_len;
  SEXP* cells = queue;
  queue = NULL;
  queue_len = queue_cap = 0;
  pthread_mutex_unlock(&queue_lock);
  for (size_t i = 0; i < n; i++) unlink_cell(cells[i]);
  free(cells);
  return (int)n;
}

double pydlr_preserved_count(void) { return live; }

double pydlr_pending_count(void) {
  pthread_mutex_lock(&queue_lock);
  double n = (double)queue_len;
  pthread_mutex_unlock(&queue_lock);
  return n;
}
