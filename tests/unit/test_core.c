/* test_core.c: errors, arena, Philox RNG, json helpers. */
#include "core/fsq_core.h"
#include "fsq_test.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_error_keeps_code_and_message(void) {
  fsq_error_clear();
  CU_ASSERT_STRING_EQUAL(fsq_error_message(), "");
  fsq_status st = fsq_error(FSQ_ERR_IO, "%s: %s", "a.txt", "No such file");
  CU_ASSERT_EQUAL(st, FSQ_ERR_IO);
  CU_ASSERT_EQUAL(fsq_error_code(), FSQ_ERR_IO);
  CU_ASSERT_STRING_EQUAL(fsq_error_message(), "a.txt: No such file");
  fsq_error_wrap(FSQ_ERR_FORMAT, "loading %s", "ckpt.fsq");
  CU_ASSERT_STRING_EQUAL(fsq_error_message(), "loading ckpt.fsq: a.txt: No such file");
  CU_ASSERT_EQUAL(fsq_error_code(), FSQ_ERR_FORMAT);
}

static void test_arena_reuses_blocks_after_reset(void) {
  fsq_arena *a = fsq_arena_create(1 << 16);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  void *first[64];
  for (int i = 0; i < 64; i++) {
    first[i] = fsq_arena_alloc(a, 3000 + (size_t)i, 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first[i]);
    CU_ASSERT_EQUAL((uintptr_t)first[i] % 64, 0);
    memset(first[i], i, 3000 + (size_t)i);
  }
  size_t reserved = fsq_arena_reserved(a);
  fsq_arena_reset(a);
  CU_ASSERT_EQUAL(fsq_arena_used(a), 0);
  for (int i = 0; i < 64; i++) {
    void *p = fsq_arena_alloc(a, 3000 + (size_t)i, 64);
    CU_ASSERT_PTR_EQUAL(p, first[i]);
  }
  CU_ASSERT_EQUAL(fsq_arena_reserved(a), reserved);
  CU_ASSERT(fsq_arena_peak(a) >= 64 * 3000);
  fsq_arena_destroy(a);
}

static void test_arena_large_alignment_and_big_block(void) {
  fsq_arena *a = fsq_arena_create(4096);
  void *p = fsq_arena_alloc(a, 10, 16);
  void *q = fsq_arena_alloc(a, 100000, 4096);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_PTR_NOT_NULL_FATAL(q);
  CU_ASSERT_EQUAL((uintptr_t)q % 4096, 0);
  memset(q, 1, 100000);
  fsq_arena_destroy(a);
}

/* Known-answer vectors of Philox4x32-10 from Random123's kat_vectors file. */
static void test_philox_matches_random123_vectors(void) {
  fsq_philox_out o = fsq_philox(0, 0, 0);
  CU_ASSERT_EQUAL(o.v[0], 0x6627e8d5u);
  CU_ASSERT_EQUAL(o.v[1], 0xe169c58du);
  CU_ASSERT_EQUAL(o.v[2], 0xbc57ac4cu);
  CU_ASSERT_EQUAL(o.v[3], 0x9b00dbd8u);
  o = fsq_philox(UINT64_MAX, UINT64_MAX, UINT64_MAX);
  CU_ASSERT_EQUAL(o.v[0], 0x408f276du);
  CU_ASSERT_EQUAL(o.v[1], 0x41c83b0eu);
  CU_ASSERT_EQUAL(o.v[2], 0xa20bc7c6u);
  CU_ASSERT_EQUAL(o.v[3], 0x6d5451fdu);
  o = fsq_philox(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  CU_ASSERT_EQUAL(o.v[0], 0xd16cfe09u);
  CU_ASSERT_EQUAL(o.v[1], 0x94fdccebu);
  CU_ASSERT_EQUAL(o.v[2], 0x5001e420u);
  CU_ASSERT_EQUAL(o.v[3], 0x24126ea1u);
}

static void test_rng_stream_regenerates_from_position(void) {
  fsq_rng r = fsq_rng_make(1234, 7);
  uint32_t seq[37];
  for (int i = 0; i < 37; i++) seq[i] = fsq_rng_u32(&r);
  for (int i = 36; i >= 0; i--) CU_ASSERT_EQUAL(fsq_rng_u32_at(1234, 7, (uint64_t)i), seq[i]);
  fsq_rng other = fsq_rng_make(1234, 8);
  CU_ASSERT_NOT_EQUAL(fsq_rng_u32(&other), seq[0]);
  for (int i = 0; i < 1000; i++) {
    float u = fsq_rng_uniform(&r);
    CU_ASSERT(u >= 0.0f && u < 1.0f);
    CU_ASSERT(fsq_rng_below(&r, 5) < 5);
  }
}

static void test_rng_permutation_is_a_permutation(void) {
  fsq_rng r = fsq_rng_make(1, 0);
  uint32_t perm[1000];
  int seen[1000] = {0};
  fsq_rng_permutation(&r, perm, 1000);
  int moved = 0;
  for (int i = 0; i < 1000; i++) {
    CU_ASSERT_FATAL(perm[i] < 1000);
    seen[perm[i]]++;
    moved += perm[i] != (uint32_t)i;
  }
  for (int i = 0; i < 1000; i++) CU_ASSERT_EQUAL(seen[i], 1);
  CU_ASSERT(moved > 900);
}

static void test_json_round_trip_and_typed_errors(void) {
  char *dir = fsq_test_tempdir("json");
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  char path[512];
  snprintf(path, sizeof path, "%s/x.json", dir);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "n", json_object_new_int64(42));
  json_object_object_add(o, "lr", json_object_new_double(5e-4));
  json_object_object_add(o, "name", json_object_new_string("adam"));
  CU_ASSERT_EQUAL(fsq_json_write_file(path, o), FSQ_OK);
  json_object_put(o);
  json_object *back = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_json_read_file(path, &back), FSQ_OK);
  int64_t n = 0;
  double lr = 0;
  const char *name = NULL;
  CU_ASSERT_EQUAL(fsq_json_get_int64(back, "n", &n), FSQ_OK);
  CU_ASSERT_EQUAL(n, 42);
  CU_ASSERT_EQUAL(fsq_json_get_double(back, "lr", &lr), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(lr, 5e-4, 1e-12);
  CU_ASSERT_EQUAL(fsq_json_get_string(back, "name", &name), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(name, "adam");
  CU_ASSERT_EQUAL(fsq_json_get_int64(back, "name", &n), FSQ_ERR_FORMAT);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "'name'"));
  CU_ASSERT_EQUAL(fsq_json_get_int64(back, "absent", &n), FSQ_ERR_NOT_FOUND);
  json_object_put(back);

  fsq_test_write_file(path, "{\"a\": [1, 2", 11);
  CU_ASSERT_EQUAL(fsq_json_read_file(path, &back), FSQ_ERR_FORMAT);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), path));
  fsq_test_remove_tree(dir);
  CU_ASSERT_EQUAL(fsq_json_read_file(path, &back), FSQ_ERR_IO);
  free(dir);
}

static void test_log_uses_fairseq_layout(void) {
  FILE *f = tmpfile();
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fsq_log_set_stream(f);
  fsq_log_set_level(FSQ_LOG_INFO);
  fsq_log_info("fairseq.trainer", "loaded checkpoint %s (epoch %d)", "ckpt.fsq", 3);
  fsq_log(FSQ_LOG_DEBUG, "fairseq.trainer", "hidden");
  fsq_log_warning("fairseq.registry", "odd");
  fsq_log_set_stream(NULL);
  rewind(f);
  char line[256];
  CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));
  /* "2026-11-22 13:09:47 | INFO | fairseq.trainer | ..." */
  int y, mo, d, h, mi, se;
  char rest[200];
  CU_ASSERT_EQUAL(sscanf(line, "%4d-%2d-%2d %2d:%2d:%2d | %199[^\n]", &y, &mo, &d, &h, &mi, &se, rest), 7);
  CU_ASSERT_STRING_EQUAL(rest, "INFO | fairseq.trainer | loaded checkpoint ckpt.fsq (epoch 3)");
  CU_ASSERT_EQUAL(line[4], '-');
  CU_ASSERT_EQUAL(line[19], ' ');
  CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));
  CU_ASSERT_PTR_NOT_NULL(strstr(line, " | WARNING | fairseq.registry | odd\n"));
  CU_ASSERT_PTR_NULL(fgets(line, sizeof line, f));
  fclose(f);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_error_keeps_code_and_message),
      FSQ_TEST_CASE(test_arena_reuses_blocks_after_reset),
      FSQ_TEST_CASE(test_arena_large_alignment_and_big_block),
      FSQ_TEST_CASE(test_philox_matches_random123_vectors),
      FSQ_TEST_CASE(test_rng_stream_regenerates_from_position),
      FSQ_TEST_CASE(test_rng_permutation_is_a_permutation),
      FSQ_TEST_CASE(test_json_round_trip_and_typed_errors),
      FSQ_TEST_CASE(test_log_uses_fairseq_layout),
      FSQ_TEST_END};
  return fsq_test_main("core", cases);
}
