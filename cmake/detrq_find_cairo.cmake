# cairo (detections drawn as PNG) through pkg-config, as the target PkgConfig::CAIRO; used by the build and,
# installed beside it, by detrq's package config (cairo ships no CMake config of its own).
if(NOT TARGET PkgConfig::CAIRO)
  pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET cairo)
endif()
