# Settings every silo target links PRIVATE: language level, warnings, sanitizers.
add_library(silo_settings INTERFACE)
target_compile_features(silo_settings INTERFACE cxx_std_20)
set(CMAKE_CXX_EXTENSIONS OFF)

target_compile_options(silo_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<BOOL:${SILO_WERROR}>:-Werror>)

if(SILO_SANITIZE)
  string(REPLACE "," ";" _silo_sanitizers "${SILO_SANITIZE}")
  foreach(_s IN LISTS _silo_sanitizers)
    target_compile_options(silo_settings INTERFACE -fsanitize=${_s} -fno-omit-frame-pointer)
    target_link_options(silo_settings INTERFACE -fsanitize=${_s})
  endforeach()
endif()

if(SILO_CLANG_TIDY)
  find_program(CLANG_TIDY_EXE NAMES clang-tidy clang-tidy-14 REQUIRED)
  set(CMAKE_CXX_CLANG_TIDY ${CLANG_TIDY_EXE})
endif()
