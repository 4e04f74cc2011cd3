#include "coordinator/txid_issuer.h"

#include <charconv>

#include "common/hex.h"

namespace commitd::coordinator {
namespace {

constexpr std::size_t kRandomBytes = 8;

std::optional<uint64_t> ParseCounter(std::string_view text) {
  if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string TxidIssuer::Next() {
  return coordinator_id_ + "-" + std::to_string(incarnation_) + "-" + std::to_string(++sequence_) + "-" +
         entropy_.Hex(kRandomBytes);
}

std::optional<TxidParts> ParseTxid(std::string_view txid) {
  // From the right: the coordinator id may itself contain '-'.
  std::size_t random_dash = txid.rfind('-');
  if (random_dash == std::string_view::npos) return std::nullopt;
  std::string_view random = txid.substr(random_dash + 1);
  if (random.size() != 2 * kRandomBytes || !IsLowerHex(random)) return std::nullopt;
  std::string_view rest = txid.substr(0, random_dash);
  std::size_t sequence_dash = rest.rfind('-');
  if (sequence_dash == std::string_view::npos) return std::nullopt;
  std::optional<uint64_t> sequence = ParseCounter(rest.substr(sequence_dash + 1));
  rest = rest.substr(0, sequence_dash);
  std::size_t incarnation_dash = rest.rfind('-');
  if (incarnation_dash == std::string_view::npos || incarnation_dash == 0) return std::nullopt;
  std::optional<uint64_t> incarnation = ParseCounter(rest.substr(incarnation_dash + 1));
  if (!sequence || !incarnation || *sequence == 0) return std::nullopt;
  return TxidParts{std::string(rest.substr(0, incarnation_dash)), *incarnation, *sequence};
}

}  // namespace commitd::coordinator
