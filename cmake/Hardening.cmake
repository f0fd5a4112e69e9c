# Warnings and hardening flags for every target of the project.
add_compile_options(-Wall -Wextra -Werror -Wno-error=deprecated-declarations)
add_compile_options(-fstack-protector-strong -fstack-clash-protection -fPIE)
add_compile_definitions($<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2> _GLIBCXX_ASSERTIONS)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
add_link_options(-pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

if(HUGINN_SANITIZE)
  add_compile_options(-fsanitize=${HUGINN_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${HUGINN_SANITIZE})
endif()

# Fuzz builds: every project library gets coverage instrumentation so that
# libFuzzer sees the code under test, not only the harness.
if(HUGINN_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
