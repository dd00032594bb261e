# What `cmake --install BUILD_DIR [--prefix P]` installs, and the build tree's copy of the data layout:
#   P/bin/detrq
#   P/share/detrq/models/rfdetr_shapes.onnx, data/shapes_calib/, data/shapes_val/,
#                 data/coco_val2017_calibration_ids.txt, scripts/export_onnx.py
#   P/include/detrq/...  P/lib/libdetrq.a  P/lib/cmake/detrq/ (find_package(detrq), target detrq::detrq)
# detrq finds share/detrq relative to its executable (DETRQ_DATA_FROM_BIN), never through the source tree.
include(CMakePackageConfigHelpers)

set(DETRQ_SHIPPED_FILES models/rfdetr_shapes.onnx data/coco_val2017_calibration_ids.txt)
set(DETRQ_SHIPPED_FOLDERS data/shapes_calib data/shapes_val)
set(DETRQ_SHIPPED_PROGRAMS scripts/export_onnx.py)

install(TARGETS detrq_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(file IN LISTS DETRQ_SHIPPED_FILES DETRQ_SHIPPED_PROGRAMS)
  get_filename_component(folder ${file} DIRECTORY)
  if(file IN_LIST DETRQ_SHIPPED_PROGRAMS)
    install(PROGRAMS ${file} DESTINATION ${DETRQ_DATA_INSTALL_DIR}/${folder})
  else()
    install(FILES ${file} DESTINATION ${DETRQ_DATA_INSTALL_DIR}/${folder})
  endif()
endforeach()
foreach(folder IN LISTS DETRQ_SHIPPED_FOLDERS)
  get_filename_component(parent ${folder} DIRECTORY)
  install(DIRECTORY ${folder} DESTINATION ${DETRQ_DATA_INSTALL_DIR}/${parent})
endforeach()

# The build tree's detrq (BUILD/detrq) finds the same layout in BUILD/share/detrq: links into the sources.
foreach(path IN LISTS DETRQ_SHIPPED_FILES DETRQ_SHIPPED_PROGRAMS DETRQ_SHIPPED_FOLDERS)
  set(link ${PROJECT_BINARY_DIR}/share/detrq/${path})
  get_filename_component(folder ${link} DIRECTORY)
  file(MAKE_DIRECTORY ${folder})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${path} ${link} SYMBOLIC)
endforeach()

# The library, its public headers and the CMake package.
set(DETRQ_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/detrq)
install(TARGETS detrq EXPORT detrqTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/detrq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT detrqTargets NAMESPACE detrq:: DESTINATION ${DETRQ_CMAKE_INSTALL_DIR})
get_property(dependencies GLOBAL PROPERTY DETRQ_PACKAGE_DEPENDENCIES)
list(REMOVE_DUPLICATES dependencies)
list(JOIN dependencies " " DETRQ_CONFIG_DEPENDENCIES)
configure_package_config_file(cmake/detrqConfig.cmake.in ${PROJECT_BINARY_DIR}/detrqConfig.cmake
                              INSTALL_DESTINATION ${DETRQ_CMAKE_INSTALL_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/detrqConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/detrqConfig.cmake ${PROJECT_BINARY_DIR}/detrqConfigVersion.cmake
              cmake/detrq_find_cairo.cmake
        DESTINATION ${DETRQ_CMAKE_INSTALL_DIR})
