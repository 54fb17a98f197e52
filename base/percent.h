// Percent-encoding (RFC 3986 section 2.1) with the set of bytes kept as a parameter: one encoder for SigV4's
// canonical URI, CloudFront invalidation paths and sitemap URLs, which differ only in what they keep.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sitesync {

/// A set of bytes (256 bits). Built at compile time: `CharSet::Of("-._~") | CharSet::Range('a', 'z')`.
class CharSet {
 public:
  constexpr CharSet() = default;

  /// The bytes of `chars`.
  static constexpr CharSet Of(std::string_view chars) {
    CharSet set;
    for (const char c : chars) set.Add(static_cast<unsigned char>(c));
    return set;
  }
  /// The bytes `first` to `last`, both included (empty when first > last).
  static constexpr CharSet Range(unsigned char first, unsigned char last) {
    CharSet set;
    for (unsigned b = first; b <= last; ++b) set.Add(static_cast<unsigned char>(b));
    return set;
  }

  /// Whether `byte` is in the set.
  [[nodiscard]] constexpr bool Contains(unsigned char byte) const {
    return ((bits_[byte >> 6] >> (byte & 63U)) & 1U) != 0;
  }
  /// The bytes in either set.
  [[nodiscard]] constexpr CharSet operator|(const CharSet& other) const {
    CharSet out;
    for (std::size_t i = 0; i < bits_.size(); ++i) out.bits_[i] = bits_[i] | other.bits_[i];
    return out;
  }
  /// The bytes of this set that are not in `other`.
  [[nodiscard]] constexpr CharSet operator-(const CharSet& other) const {
    CharSet out;
    for (std::size_t i = 0; i < bits_.size(); ++i) out.bits_[i] = bits_[i] & ~other.bits_[i];
    return out;
  }
  /// The bytes not in this set.
  [[nodiscard]] constexpr CharSet operator~() const {
    CharSet out;
    for (std::size_t i = 0; i < bits_.size(); ++i) out.bits_[i] = ~bits_[i];
    return out;
  }
  constexpr bool operator==(const CharSet&) const = default;

 private:
  constexpr void Add(unsigned char byte) { bits_[byte >> 6] |= std::uint64_t{1} << (byte & 63U); }

  std::array<std::uint64_t, 4> bits_{};
};

/// ASCII letters and digits.
inline constexpr CharSet kAlnum = CharSet::Range('A', 'Z') | CharSet::Range('a', 'z') | CharSet::Range('0', '9');
/// RFC 3986 "unreserved": ALPHA DIGIT - . _ ~ (what SigV4 keeps, the AWS docs' UriEncode()).
inline constexpr CharSet kUnreserved = kAlnum | CharSet::Of("-._~");

/// `text` with every byte outside `keep` written as '%' and two uppercase hex digits; bytes in `keep` are copied
/// as they are. Bytes, not characters: UTF-8 is encoded byte by byte ("é" -> "%C3%A9"). Never fails.
[[nodiscard]] std::string PercentEncode(std::string_view text, const CharSet& keep);

}  // namespace sitesync
