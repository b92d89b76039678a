# Redis BindingStore and the EventLoop adapters it runs on. Included from
# proxy/store/CMakeLists.txt.
set(_pushgate_redis_dir ${PROJECT_SOURCE_DIR}/proxy/store)

add_library(pushgate_proxy_redis_store STATIC
  ${_pushgate_redis_dir}/redis_connection.cc
  ${_pushgate_redis_dir}/redis_binding_store.cc
  ${_pushgate_redis_dir}/poll_event_loop.cc)
pushgate_warnings(pushgate_proxy_redis_store)
target_include_directories(pushgate_proxy_redis_store PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(pushgate_proxy_redis_store
  PUBLIC pushgate_proxy_store pushgate_common absl::status absl::statusor absl::time
         absl::strings
  PRIVATE PkgConfig::HIREDIS)

# EventLoop on a sofia su_root (the proxy's loop); standalone so the store never needs sofia.
add_library(pushgate_su_event_loop STATIC ${PROJECT_SOURCE_DIR}/proxy/sofia/su_event_loop.cc)
pushgate_warnings(pushgate_su_event_loop)
target_include_directories(pushgate_su_event_loop PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(pushgate_su_event_loop
  PUBLIC pushgate_common absl::time PkgConfig::SOFIA)
