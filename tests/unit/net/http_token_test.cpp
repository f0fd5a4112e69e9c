// common/net/http_token.h: token characters and ASCII case folding. The folding
// changes only A-Z: no locale, no bytes above 0x7f, not the neighbours of the
// letters ('@', '[', '`', '{').
#include "common/net/http_token.h"

#include <gtest/gtest.h>

#include <string>

namespace huginn::net {
namespace {

TEST(HttpToken, AsciiLowerFoldsOnlyTheLettersAToZ) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const char want = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : ch;
    EXPECT_EQ(ascii_lower(ch), want) << c;
  }
  std::string s = "Host: WWW.Example.COM:8443 \xc4\xd6@[`{";
  ascii_lower_in_place(s);
  EXPECT_EQ(s, "host: www.example.com:8443 \xc4\xd6@[`{");
  std::string empty;
  ascii_lower_in_place(empty);
  EXPECT_TRUE(empty.empty());
}

TEST(HttpToken, AsciiIequals) {
  EXPECT_TRUE(ascii_iequals("Content-Length", "content-length"));
  EXPECT_TRUE(ascii_iequals("", ""));
  EXPECT_FALSE(ascii_iequals("content-length", "content-lengths"));
  EXPECT_FALSE(ascii_iequals("a", "b"));
  EXPECT_FALSE(ascii_iequals("@", "`"));        // 0x40 and 0x60 differ by the case bit, yet are no letters
  EXPECT_FALSE(ascii_iequals("\xc4", "\xe4"));  // Latin-1 Ä and ä: not ASCII
  static_assert(ascii_iequals("X-Forwarded-For", "x-forwarded-for"));
}

TEST(HttpToken, Tchar) {
  for (char c : std::string("!#$%&'*+-.^_`|~azAZ09"))
    EXPECT_TRUE(is_tchar(static_cast<unsigned char>(c))) << c;
  for (char c : std::string(" \t\"(),/:;<=>?@[\\]{}\x7f"))
    EXPECT_FALSE(is_tchar(static_cast<unsigned char>(c))) << c;
  EXPECT_FALSE(is_tchar(0x80));
  EXPECT_FALSE(is_tchar(0));
}

}  // namespace
}  // namespace huginn::net
