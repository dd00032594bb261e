# detrq_dependency(PACKAGE [PUBLIC|PRIVATE TARGET...]): finds PACKAGE (required), links libdetrq to TARGETs,
# and records PACKAGE for the installed package config (detrqConfig.cmake.in), which finds it again with
# find_dependency: libdetrq is static, so a program linking it links its private dependencies too.
# A macro, not a function, so that the package's variables stay visible to the caller.
macro(detrq_dependency package)
  find_package(${package} REQUIRED)
  if(NOT "${ARGN}" STREQUAL "")
    target_link_libraries(detrq ${ARGN})
  endif()
  set_property(GLOBAL APPEND PROPERTY DETRQ_PACKAGE_DEPENDENCIES ${package})
endmacro()
