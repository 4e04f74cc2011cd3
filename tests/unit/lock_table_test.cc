#include <doctest/doctest.h>

#include "participant/lock_table.h"

using commitd::participant::LockTable;

TEST_CASE("lock table: all-or-nothing acquisition, holder reported, release frees every key") {
  LockTable t;
  CHECK_FALSE(t.TryAcquire("t1", {"a", "b"}).has_value());
  CHECK(t.size() == 2);
  auto conflict = t.TryAcquire("t2", {"c", "b"});
  REQUIRE(conflict.has_value());
  CHECK(*conflict == "t1");
  CHECK_FALSE(t.Holder("c").has_value());
  CHECK_FALSE(t.TryAcquire("t1", {"a", "d"}).has_value());  // re-entrant for the holder
  CHECK(t.Holder("d") == std::optional<std::string>("t1"));
  t.Release("t1");
  CHECK(t.size() == 0);
  CHECK_FALSE(t.TryAcquire("t2", {"c", "b"}).has_value());
  t.Release("unknown");
  CHECK(t.size() == 2);
}

TEST_CASE("lock table: FirstHolder checks without taking; Clear empties it") {
  LockTable t;
  CHECK_FALSE(t.TryAcquire("t1", {"a"}).has_value());
  CHECK(t.FirstHolder("t2", {"b", "a"}) == std::optional<std::string>("t1"));
  CHECK_FALSE(t.FirstHolder("t1", {"a", "b"}).has_value());  // its own keys are no conflict
  CHECK_FALSE(t.Holder("b").has_value());                      // nothing taken
  t.Clear();
  CHECK(t.size() == 0);
  CHECK_FALSE(t.TryAcquire("t2", {"a"}).has_value());
  t.Release("t1");  // forgotten by Clear: nothing of t2's goes
  CHECK(t.Holder("a") == std::optional<std::string>("t2"));
}
