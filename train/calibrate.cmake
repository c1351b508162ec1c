# Calibration by simulation over stored logits (decisions from infer/policy.c), CSV and SVG outputs.
# Included from train/CMakeLists.txt.
add_library(epee_calibrate STATIC ${CMAKE_SOURCE_DIR}/train/calibrate.c ${CMAKE_SOURCE_DIR}/train/svg_plot.c)
target_link_libraries(epee_calibrate PUBLIC epee_policy epee_core m) # core: atomic_file
epee_add_test(test_calibrate SOURCES ${CMAKE_SOURCE_DIR}/tests/test_calibrate.c LIBS epee_calibrate)
