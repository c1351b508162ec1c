# libepee: the public inference API (infer/epee.h) as a shared library (SONAME libepee.so.MAJOR, exporting epee_*
# only) and a static one, built from the objects of the layers it needs; `cmake --install` puts them, epee.h, a
# pkg-config file, a CMake package (find_package(epee) -> epee::epee), the two CLIs and their man pages in place.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(EPEE_LIB_PARTS epee_core epee_data epee_models epee_policy epee_infer)
set(EPEE_LIB_OBJECTS)
foreach(p ${EPEE_LIB_PARTS})
  list(APPEND EPEE_LIB_OBJECTS $<TARGET_OBJECTS:${p}>)
endforeach()
# what those objects call: the layers' own dependencies (core/, data/, infer/ CMakeLists.txt)
set(EPEE_LIB_DEPS dnnl_lib OpenMP::OpenMP_C PkgConfig::HDF5 PkgConfig::SENTENCEPIECE PkgConfig::JANSSON
    PkgConfig::LIBZIP PkgConfig::SPNG ${UNISTRING_LIBRARY} m)

add_library(epee SHARED ${EPEE_LIB_OBJECTS})
set_target_properties(epee PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                      LINKER_LANGUAGE CXX PUBLIC_HEADER ${CMAKE_SOURCE_DIR}/infer/epee.h)
target_link_libraries(epee PRIVATE ${EPEE_LIB_DEPS})
target_link_options(epee PRIVATE -Wl,--version-script=${CMAKE_CURRENT_LIST_DIR}/epee.map -Wl,--no-undefined)
set_property(TARGET epee APPEND PROPERTY LINK_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/epee.map)
target_include_directories(epee INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

add_library(epee_static STATIC ${EPEE_LIB_OBJECTS})
set_target_properties(epee_static PROPERTIES OUTPUT_NAME epee)

# pkg-config: the shared library by default; `pkg-config --static` adds what the static one needs
set(EPEE_PC_REQUIRES "hdf5-serial sentencepiece jansson libzip spng")
set(EPEE_PC_LIBS_PRIVATE "-ldnnl -lunistring -fopenmp -lstdc++ -lm")
# relocatable: the prefix is found from the .pc file's own place, wherever --prefix put the tree
file(RELATIVE_PATH EPEE_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${CMAKE_CURRENT_LIST_DIR}/epee.pc.in ${CMAKE_BINARY_DIR}/epee.pc @ONLY)

set(EPEE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/epee)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/epeeConfig.cmake.in ${CMAKE_BINARY_DIR}/epeeConfig.cmake
                              INSTALL_DESTINATION ${EPEE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/epeeConfigVersion.cmake COMPATIBILITY SameMajorVersion)

# man pages from the CLIs' own --help and --version, so they never disagree with the programs
find_program(HELP2MAN help2man REQUIRED)
set(EPEE_MAN_PAGES)
foreach(cli epee-train epee-infer)
  set(page ${CMAKE_BINARY_DIR}/man/${cli}.1)
  add_custom_command(OUTPUT ${page}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
                     COMMAND ${HELP2MAN} --no-info --no-discard-stderr --output=${page} $<TARGET_FILE:${cli}>
                     DEPENDS ${cli} VERBATIM)
  list(APPEND EPEE_MAN_PAGES ${page})
endforeach()
add_custom_target(epee_man ALL DEPENDS ${EPEE_MAN_PAGES})

install(TARGETS epee EXPORT epeeTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS epee_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS epee-train epee-infer RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT epeeTargets NAMESPACE epee:: DESTINATION ${EPEE_CMAKE_DIR})
install(FILES ${CMAKE_BINARY_DIR}/epeeConfig.cmake ${CMAKE_BINARY_DIR}/epeeConfigVersion.cmake
        DESTINATION ${EPEE_CMAKE_DIR})
install(FILES ${CMAKE_BINARY_DIR}/epee.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${EPEE_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_SOURCE_DIR}/python/epee.py DESTINATION ${CMAKE_INSTALL_DATADIR}/epee/python)

string(TOUPPER "${CMAKE_BUILD_TYPE}" EPEE_BUILD_TYPE_UPPER)
# the installed tree as a user sees it: a program built with pkg-config and with find_package, the exports
add_test(NAME install COMMAND bash ${CMAKE_SOURCE_DIR}/tests/install_test.sh ${CMAKE_BINARY_DIR}
         "${CMAKE_C_COMPILER}" "${CMAKE_C_FLAGS} ${CMAKE_C_FLAGS_${EPEE_BUILD_TYPE_UPPER}}")
