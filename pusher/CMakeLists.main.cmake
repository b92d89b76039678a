# The pushgate-pusher executable (included by pusher/CMakeLists.txt).
if(TARGET pushgate_pusher_service)
  add_executable(pushgate-pusher ${CMAKE_CURRENT_SOURCE_DIR}/main.cc)
  pushgate_warnings(pushgate-pusher)
  target_link_libraries(pushgate-pusher PRIVATE pushgate_pusher_service pushgate_common)
  # jemalloc: a push allocates and frees many small objects across gRPC and HTTP/2 threads;
  # bench/pusher measured ~27 -> ~17 us of CPU per push against glibc malloc.
  find_library(JEMALLOC_LIB jemalloc)
  if(JEMALLOC_LIB AND NOT PUSHGATE_SANITIZE)
    target_link_libraries(pushgate-pusher PRIVATE ${JEMALLOC_LIB})
  endif()
endif()
