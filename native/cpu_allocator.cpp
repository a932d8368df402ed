// A caching allocator for torch's CPU tensors: the blocks a training step frees are handed to the next step's
// requests of the same size, without a trip through malloc.
//
// Why: a training step allocates and frees the same blocks every time, and with glibc's malloc their cost depends
// on settings and on the heap's state, which pydlr does not control:
// - Without GLIBC_TUNABLES (which must be set before the process starts; R and Python users rarely do), glibc
//   gives blocks over its mmap threshold (at most 32 MiB) back to the system on free and page-faults them in again
//   on the next step: MobileNetV2 training at 224x224, batch 32, 1.67 s for two steps with this cache against
//   2.40 s without it (with the tunables 1.37 against 1.39; the seed CNN's smaller blocks the same either way).
// - Inside R, glibc serves torch's requests from the free chunks R's own objects leave in the heap, at other
//   addresses each step (the same Python training loop measured 0-6% slower in an R process than in a Python
//   one; with this cache 0-3%, within the noise of those runs).
// Blocks of 4 KiB and more are kept by size (rounded up to 64 bytes, or to a 1/16 power-of-two step above 1 MiB)
// and reused last-freed-first (warm in the cache); smaller ones go to malloc. What is kept is bounded
// (PYDLR_CPU_CACHE_MB; by default 1/8 of RAM, at most 4 GiB). Switched on when pydlr.ops is imported (unless
// PYDLR_CPU_CACHE_MB=0); switching it off (pydlr.ops.set_cpu_cache(False)) gives the kept blocks back and hands
// torch its own allocator again.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace pydlr {
namespace {

// The block's size lives in a header just before the data, so the deleter needs nothing but the data pointer
// (torch's raw_allocate/raw_deallocate require that the context be the data).
constexpr size_t kHeader = 64;  // keeps the data 64-byte aligned, as c10's own allocator does
// Below this, requests go to malloc (glibc's per-thread cache serves them without a lock, and their cost did
// not depend on the heap's state: measured 16-byte and 256 KB requests alike in R and Python processes).
constexpr size_t kSmallest = 4096;

size_t bucket_size(size_t n) {
  if (n <= (size_t{1} << 20)) return (n + 63) & ~size_t{63};
  size_t step = size_t{1} << (63 - __builtin_clzll(n));  // the power of two at or below n
  step >>= 4;
  return (n + step - 1) / step * step;
}

size_t default_limit() {
  // PYDLR_CPU_CACHE_MB=0 means "not switched on at import" (pydlr/ops.py); switched on explicitly after that, the
  // cache takes the default limit.
  if (const char* env = std::getenv("PYDLR_CPU_CACHE_MB")) {
    try {
      const size_t mb = static_cast<size_t>(std::stoull(env));
      if (mb > 0) return mb << 20;
    } catch (...) {
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const size_t ram = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
  return std::min<size_t>(ram / 8, size_t{4} << 30);
}

class CachingCPUAllocator final : public c10::Allocator {
 public:
  explicit CachingCPUAllocator(size_t limit) : limit_(limit) {}

  c10::DataPtr allocate(size_t n) override {
    // Below kSmallest, glibc's per-thread cache serves requests well and without a lock: size 0 in the header
    // sends such a block straight back to malloc when it is freed.
    const size_t size = n < kSmallest ? 0 : bucket_size(n);
    void* base = size == 0 ? nullptr : take_kept(size);
    if (base == nullptr) {
      base = fresh_block(size == 0 ? n : size);
      *static_cast<size_t*>(base) = size;
    }
    void* data = static_cast<char*>(base) + kHeader;
    // What c10's own allocator reports, so that torch.profiler's memory columns see these blocks too (it
    // records only while profiling memory).
    c10::profiledCPUMemoryReporter().New(data, n);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  // The last kept block of `size` (warm in the cache), or nullptr.
  void* take_kept(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) {
      ++misses_;
      return nullptr;
    }
    void* base = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    ++hits_;
    return base;
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  // A block from malloc; when malloc has none, the kept blocks go back first and it is asked again (the error is
  // torch's out-of-memory error, as without the cache).
  void* fresh_block(size_t size) {
    try {
      return c10::alloc_cpu(size + kHeader);
    } catch (const c10::Error&) {
      clear();
      return c10::alloc_cpu(size + kHeader);
    }
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // Called for every block this allocator handed out: back to its size's list, or to malloc over the limit.
  void give_back(void* data) {
    c10::profiledCPUMemoryReporter().Delete(data);
    void* base = static_cast<char*>(data) - kHeader;
    const size_t size = *static_cast<size_t*>(base);
    if (size == 0) {
      c10::free_cpu(base);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (enabled_ && cached_ + size <= limit_) {
        free_[size].push_back(base);
        cached_ += size;
        return;
      }
    }
    c10::free_cpu(base);
  }

  // Every kept block back to malloc.
  void clear() {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [size, list] : free_) blocks.insert(blocks.end(), list.begin(), list.end());
      free_.clear();
      cached_ = 0;
    }
    for (void* b : blocks) c10::free_cpu(b);
  }

  // Whether blocks freed from now on are kept (not once torch's own allocator is back in use: blocks this one
  // handed out before still come back here, and go on to malloc).
  void set_keeping(bool keep) {
    std::lock_guard<std::mutex> lock(mutex_);
    enabled_ = keep;
  }

  std::unordered_map<std::string, int64_t> stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {{"cached_bytes", static_cast<int64_t>(cached_)}, {"limit_bytes", static_cast<int64_t>(limit_)},
            {"hits", hits_}, {"misses", misses_}, {"enabled", enabled_ ? 1 : 0}};
  }

  // A fork while another thread holds the lock would leave the child's copy locked forever (pydlr's augmentation
  // workers and DataLoader workers fork): hold it across fork, release it on both sides.
  void lock() { mutex_.lock(); }
  void unlock() { mutex_.unlock(); }

  static void release(void* data);

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t limit_;
  bool enabled_ = true;
  int64_t hits_ = 0, misses_ = 0;
};

// Never destroyed: tensors freed while the process exits still find it.
CachingCPUAllocator* the_allocator = nullptr;
// c10 keeps the allocator of the highest priority set so far (its own has 0): each switch takes the next one.
uint8_t next_priority = 1;
std::mutex switch_mutex;

void CachingCPUAllocator::release(void* data) { the_allocator->give_back(data); }

}  // namespace

void cpu_cache_use(bool on) {
  std::lock_guard<std::mutex> lock(switch_mutex);
  if (the_allocator == nullptr) {
    if (!on) return;
    the_allocator = new CachingCPUAllocator(default_limit());
    pthread_atfork([] { the_allocator->lock(); }, [] { the_allocator->unlock(); }, [] { the_allocator->unlock(); });
  }
  TORCH_CHECK(next_priority < 255, "pydlr: the CPU caching allocator was switched on and off too often");
  the_allocator->set_keeping(on);
  the_allocator->clear();
  c10::SetCPUAllocator(on ? static_cast<c10::Allocator*>(the_allocator) : c10::GetDefaultCPUAllocator(),
                       next_priority++);
}

std::unordered_map<std::string, int64_t> cpu_cache_stats() {
  if (the_allocator == nullptr) return {{"enabled", 0}, {"cached_bytes", 0}, {"limit_bytes", 0}, {"hits", 0},
                                        {"misses", 0}};
  return the_allocator->stats();
}

void cpu_cache_clear() {
  if (the_allocator != nullptr) the_allocator->clear();
}

}  // namespace pydlr
