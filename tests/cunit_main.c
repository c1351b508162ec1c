/* Shared main for every CUnit test binary: each test file defines epee_register_tests().
 * Runs all suites in basic mode (CUnit prints its Run Summary), then exits non-zero if any suite,
 * test or assert failed; the counts are read before CU_cleanup_registry. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

void epee_register_tests(void);

int main(void) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 2;
  epee_register_tests();
  if (CU_get_error() != CUE_SUCCESS) {
    fprintf(stderr, "test registration failed: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 2;
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                    CU_get_number_of_suites_failed();
  unsigned ran = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (ran == 0) {
    fprintf(stderr, "no test ran\n");
    return 1;
  }
  return failed ? 1 : 0;
}
