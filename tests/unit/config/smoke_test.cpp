#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

TEST(ConfigSmoke, MinimalAndRouteError) {
  auto c = ok(std::string(kListen) +
              "[[backends]]\naddress = \"127.0.0.1:9000\"\n[[domains]]\n[[domains.routes]]\nprefix = "
              "\"/\"\nbackend = \"127.0.0.1:9000\"\n");
  EXPECT_EQ(c->workers, kTestWorkers);
  auto e = errors(std::string(kListen) +
                  "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"10.0.0.9:80\"\nfoo = 1\n");
  ASSERT_EQ(e.size(), 2u) << join_errors(e);
  EXPECT_EQ(e[0].to_string(),
            "domains[0].routes[0].backend: no [[backends]] entry \"10.0.0.9:80\" (config.toml:6:11)");
  EXPECT_EQ(e[1].to_string(), "domains[0].routes[0].foo: unknown key \"foo\" (config.toml:7:1)");
}

}  // namespace
}  // namespace huginn::config::test
