# Extra link dependencies of unit tests (module names under src/, fake
# names under tests/fakes/). Default for test_<m>: <m>, util and log.
# UNIT_DEPS_test_<m>  = <module> ...
# UNIT_FAKES_test_<m> = <fake> ...
UNIT_DEPS_test_dispatch = dispatch dispatch_data codec codec_result route store_parse
UNIT_DEPS_test_store_parse = route
UNIT_FAKES_test_dispatch = fake_store
UNIT_DEPS_test_http = metrics
UNIT_DEPS_test_consumer = offsets queue job kafka metrics stop
UNIT_DEPS_test_config = config_options config_value config_print redis_url
UNIT_DEPS_test_config_print = config config_options config_value redis_url
UNIT_DEPS_test_consumer += consumer_replay replay_range
UNIT_DEPS_test_worker_batch = worker_batch dispatch dispatch_data codec codec_result route metrics job store_parse
UNIT_FAKES_test_worker_batch = fake_store
UNIT_DEPS_test_kafka = metrics stop
UNIT_DEPS_test_pool = worker_batch dispatch dispatch_data codec codec_result route job queue metrics store_parse
UNIT_FAKES_test_pool = fake_store
UNIT_DEPS_test_producer = kafka job codec codec_result metrics stop
UNIT_DEPS_test_consumer_mock = consumer consumer_replay consumer_rebalance consumer_pause replay_range offsets queue job kafka metrics codec codec_result stop
UNIT_DEPS_test_consumer += consumer_rebalance consumer_pause
UNIT_DEPS_test_codec = codec_result
UNIT_DEPS_test_dispatch_redelivery = dispatch dispatch_data codec codec_result route store_parse
UNIT_FAKES_test_dispatch_redelivery = fake_store
UNIT_DEPS_test_store_reply = store_reply
