# The pushgate-pusher executable (included by pusher/CMakeLists.txt).
if(TARGET pushgate_pusher_service)
  add_executable(pushgate-pusher ${CMAKE_CURRENT_SOURCE_DIR}/main.cc)
  pushgate_warnings(pushgate-pusher)
  target_link_libraries(pushgate-pusher PRIVATE pushgate_pusher_service pushgate_common)
endif()
