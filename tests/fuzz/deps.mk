# Modules under src/ that each fuzz harness links (tests/fuzz/fuzz_<t>.c),
# compiled with the fuzzer's sanitizers: FUZZ_DEPS_<t> = <module> ...
# The system libraries it links, as pkg-config package names (default
# jansson): FUZZ_LIBS_<t> = <package> ...
FUZZ_DEPS_request = codec codec_result util
FUZZ_DEPS_redis_url = redis_url util
FUZZ_DEPS_config = config config_options config_value config_print redis_url util
FUZZ_DEPS_store_reply = store_parse route codec codec_result util
FUZZ_LIBS_store_reply = hiredis jansson
FUZZ_DEPS_cluster_slots = redis_cluster util
FUZZ_LIBS_cluster_slots = hiredis
