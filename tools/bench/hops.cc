#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "tools/bench/flag_values.h"
#include "tools/bench/latency_recorder.h"
#include "tools/bench/modes.h"

namespace commitd::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Warm-up round trips before the timed ones (page faults, first wake-ups).
constexpr int64_t kWarmup = 1000;

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// User + system CPU time of `who` (RUSAGE_SELF: every thread of this process;
// RUSAGE_CHILDREN: the children waited for), in microseconds.
int64_t CpuUs(int who) {
  rusage usage{};
  ::getrusage(who, &usage);
  auto us = [](const timeval& t) { return static_cast<int64_t>(t.tv_sec) * 1'000'000 + t.tv_usec; };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

bool SendByte(int fd) {
  const char byte = 'x';
  while (true) {
    const ssize_t n = ::send(fd, &byte, 1, MSG_NOSIGNAL);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// Blocks until one byte arrives; false at end of stream or on an error.
bool ReceiveByte(int fd) {
  char byte;
  while (true) {
    const ssize_t n = ::recv(fd, &byte, 1, 0);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

void NoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// One byte to a child process over loopback TCP and back, `count` times; each
// side sleeps in recv until the other's byte wakes it. Forks: call it before
// this process starts any thread. *cpu_us: both processes' CPU time, warm-up
// included.
Status LoopbackRoundTrips(int64_t count, LatencyRecorder* latency, int64_t* cpu_us) {
  const int64_t cpu_before = CpuUs(RUSAGE_SELF) + CpuUs(RUSAGE_CHILDREN);
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return Status::IoError(Errno("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const Status s = Status::IoError(Errno("listen on 127.0.0.1"));
    ::close(listener);
    return s;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    const Status s = Status::IoError(Errno("fork"));
    ::close(listener);
    return s;
  }
  if (child == 0) {
    // The echoing end: answers every byte until the parent closes.
    ::close(listener);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(1);
    NoDelay(fd);
    while (ReceiveByte(fd)) {
      if (!SendByte(fd)) ::_exit(1);
    }
    ::_exit(0);
  }
  // The child connects at once; if it could not, do not wait for it forever.
  pollfd ready{listener, POLLIN, 0};
  const bool connected = ::poll(&ready, 1, 5000) == 1;
  const int fd = connected ? ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  ::close(listener);
  Status status;
  if (fd < 0) {
    status = Status::IoError(connected ? Errno("accept") : "the child process did not connect within 5 s");
  } else {
    NoDelay(fd);
    for (int64_t i = 0; i < kWarmup + count && status.ok(); ++i) {
      const Clock::time_point t0 = Clock::now();
      if (!SendByte(fd) || !ReceiveByte(fd)) {
        status = Status::IoError("loopback round trip failed: the echoing child process is gone or its connection broke");
        break;
      }
      if (i >= kWarmup) latency->Record(Clock::now() - t0);
    }
    ::close(fd);
  }
  int child_status = 0;
  ::waitpid(child, &child_status, 0);
  *cpu_us = CpuUs(RUSAGE_SELF) + CpuUs(RUSAGE_CHILDREN) - cpu_before;
  return status;
}

// A turn handed to another thread and back through one condition variable
// each way, as a job goes to a storage thread and its completion comes back.
// *cpu_us: both threads' CPU time, warm-up included.
void ThreadRoundTrips(int64_t count, LatencyRecorder* latency, int64_t* cpu_us) {
  const int64_t cpu_before = CpuUs(RUSAGE_SELF);
  std::mutex mu;
  std::condition_variable to_worker, to_caller;
  bool worker_turn = false;
  bool stop = false;
  std::thread worker([&] {
    std::unique_lock lock(mu);
    while (true) {
      to_worker.wait(lock, [&] { return worker_turn || stop; });
      if (stop) return;
      worker_turn = false;
      to_caller.notify_one();
    }
  });
  for (int64_t i = 0; i < kWarmup + count; ++i) {
    const Clock::time_point t0 = Clock::now();
    {
      std::unique_lock lock(mu);
      worker_turn = true;
      to_worker.notify_one();
      to_caller.wait(lock, [&] { return !worker_turn; });
    }
    if (i >= kWarmup) latency->Record(Clock::now() - t0);
  }
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  to_worker.notify_one();
  worker.join();
  *cpu_us = CpuUs(RUSAGE_SELF) - cpu_before;
}

double Us(int64_t ns) { return static_cast<double>(ns) / 1e3; }

}  // namespace

int RunHops(const Flags& flags) {
  auto count = IntFlag(flags, "count", 20000, 1);
  const bool json = flags.Has("json");
  if (!count.ok()) {
    std::fprintf(stderr, "hops: %s\n", count.status().message().c_str());
    return 2;
  }
  LatencyRecorder loopback, thread;
  int64_t loopback_cpu_us = 0, thread_cpu_us = 0;
  if (Status s = LoopbackRoundTrips(*count, &loopback, &loopback_cpu_us); !s.ok()) {
    std::fprintf(stderr, "hops: %s\n", s.message().c_str());
    return 1;
  }
  ThreadRoundTrips(*count, &thread, &thread_cpu_us);
  const double round_trips = static_cast<double>(*count + kWarmup);
  const double loopback_cpu = static_cast<double>(loopback_cpu_us) / round_trips;
  const double thread_cpu = static_cast<double>(thread_cpu_us) / round_trips;
  const double loopback_p50 = Us(loopback.PercentileNs(50)), loopback_p90 = Us(loopback.PercentileNs(90));
  const double thread_p50 = Us(thread.PercentileNs(50)), thread_p90 = Us(thread.PercentileNs(90));
  if (json) {
    nlohmann::json out = {{"mode", "hops"},
                          {"round_trips", *count},
                          {"loopback_rtt_p50_us", loopback_p50},
                          {"loopback_rtt_p90_us", loopback_p90},
                          {"thread_rtt_p50_us", thread_p50},
                          {"thread_rtt_p90_us", thread_p90},
                          {"loopback_cpu_us_per_round_trip", loopback_cpu},
                          {"thread_cpu_us_per_round_trip", thread_cpu}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("hops: %lld round trips each, no work attached\n", static_cast<long long>(*count));
    std::printf("  loopback TCP, two processes      p50 %8.1f us  p90 %8.1f us  CPU %6.1f us per round trip\n",
                loopback_p50, loopback_p90, loopback_cpu);
    std::printf("  condition variable, two threads  p50 %8.1f us  p90 %8.1f us  CPU %6.1f us per round trip\n",
                thread_p50, thread_p90, thread_cpu);
  }
  return 0;
}

}  // namespace commitd::bench
