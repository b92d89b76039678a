# Included by proxy/CMakeLists.txt: the configuration library and the pushgate-proxy executable.
add_library(pushgate_proxy_config STATIC config.cc)
pushgate_warnings(pushgate_proxy_config)
target_include_directories(pushgate_proxy_config PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(pushgate_proxy_config PUBLIC pushgate_proxy_sofia pushgate_proxy_core pushgate_common)

add_executable(pushgate-proxy main.cc)
pushgate_warnings(pushgate-proxy)
target_link_libraries(pushgate-proxy PRIVATE pushgate_proxy_config pushgate_proxy_sofia pushgate_proxy_calls
                                             pushgate_proxy_store pushgate_proxy_redis_store
                                             pushgate_su_event_loop pushgate_common)
install(TARGETS pushgate-proxy RUNTIME DESTINATION bin)
# jemalloc: sofia-sip allocates every message, header and transaction with malloc (su_home), and
# the registrar grows by one record per binding; under REGISTER load glibc malloc spent ~35% of
# the proxy's CPU (bench/register with perf). The sanitizer preset keeps its own allocator.
find_library(JEMALLOC_LIB jemalloc)
if(JEMALLOC_LIB AND NOT PUSHGATE_SANITIZE)
  target_link_libraries(pushgate-proxy PRIVATE ${JEMALLOC_LIB})
endif()
