// ThreadPool: a fixed set of workers for data-parallel loops; the calling thread takes part. Between
// loops a worker spins briefly before it sleeps, and so does the caller waiting for the last chunk: a
// model runs hundreds of loops back to back, and waking a sleeping thread costs tens of microseconds
// each time (more in a virtual machine). The spin is bounded (2 ms), so an idle pool costs nothing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "detrq/core/function_ref.h"

namespace detrq::core {

// What parallel_for runs: fn(begin, end), referenced, never copied (function_ref.h).
using ChunkFn = FunctionRef<void(int64_t, int64_t)>;

class ThreadPool {
 public:
  // threads <= 0 means one per hardware core. A pool of 1 runs everything on the caller.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n); returns when all are done. Chunks are at
  // least `grain` long. The first exception thrown by fn is rethrown here. Not reentrant: a nested
  // call runs serially on the calling thread.
  void parallel_for(int64_t n, int64_t grain, ChunkFn fn);

  static int hardware_threads() noexcept;

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const ChunkFn* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_chunk_ = 0;
  int64_t next_chunk_ = 0;   // guarded by mutex_
  int64_t chunks_total_ = 0;
  int64_t chunks_done_ = 0;
  uint64_t generation_ = 0;
  // Mirrors of generation_ and chunks_done_ that spinning threads read without the mutex; every
  // decision is still taken under it.
  std::atomic<uint64_t> generation_seen_{0};
  std::atomic<int64_t> chunks_done_seen_{0};
  bool stopping_ = false;
  bool busy_ = false;
  std::exception_ptr error_;
};

}  // namespace detrq::core
