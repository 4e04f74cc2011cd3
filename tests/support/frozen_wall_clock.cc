// A wall clock that stands still, for tests of a clock that moved back.
//
// LD_PRELOAD this library and set COMMITD_TEST_WALL_CLOCK to seconds since
// the epoch: CLOCK_REALTIME (and its coarse and TAI forms), gettimeofday and
// time then read that instant, while the monotonic clocks run on. Every other
// clock goes to the kernel.
//
// It allocates nothing and looks nothing up with dlsym, so it can be
// preloaded into a process whose allocator reads the clock while it
// initialises (jemalloc does; libfaketime's dlsym-then-malloc deadlocks there).
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

// The frozen instant, or -1 when COMMITD_TEST_WALL_CLOCK is unset or not a number.
time_t FrozenSeconds() {
  const char* text = std::getenv("COMMITD_TEST_WALL_CLOCK");
  if (text == nullptr || *text == '\0') return -1;
  char* end = nullptr;
  errno = 0;
  long long seconds = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || seconds < 0) return -1;
  return static_cast<time_t>(seconds);
}

bool IsWallClock(clockid_t clock) {
  return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_TAI;
}

}  // namespace

extern "C" int clock_gettime(clockid_t clock, struct timespec* now) {
  time_t frozen = FrozenSeconds();
  if (IsWallClock(clock) && frozen >= 0) {
    now->tv_sec = frozen;
    now->tv_nsec = 0;
    return 0;
  }
  return static_cast<int>(syscall(SYS_clock_gettime, clock, now));
}

extern "C" int gettimeofday(struct timeval* now, void* /*timezone*/) {
  struct timespec wall {};
  if (clock_gettime(CLOCK_REALTIME, &wall) != 0) return -1;
  now->tv_sec = wall.tv_sec;
  now->tv_usec = static_cast<suseconds_t>(wall.tv_nsec / 1000);
  return 0;
}

extern "C" time_t time(time_t* out) {
  struct timespec wall {};
  if (clock_gettime(CLOCK_REALTIME, &wall) != 0) return static_cast<time_t>(-1);
  if (out != nullptr) *out = wall.tv_sec;
  return wall.tv_sec;
}
