# Read by CMake after each project() of whisper.cpp when it is built for Windows with MinGW-w64
# (CMAKE_PROJECT_INCLUDE, set by scripts/windows_build.sh).

# ggml names its static libraries ggml.a, ggml-base.a, ggml-cpu.a on Windows (no "lib"), and
# rustc's -l static=ggml looks for libggml.a: the prefix is given back to those targets once
# whisper.cpp's CMakeLists.txt has been read.
function(crossmodal_lib_prefix)
  foreach(target ggml ggml-base ggml-cpu)
    if(TARGET ${target})
      set_target_properties(${target} PROPERTIES PREFIX "lib")
    endif()
  endforeach()
endfunction()
if(CMAKE_CURRENT_SOURCE_DIR STREQUAL CMAKE_SOURCE_DIR AND NOT CROSSMODAL_DEFERRED)
  set(CROSSMODAL_DEFERRED ON)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL crossmodal_lib_prefix)
endif()

# MinGW-w64 headers older than 11.0 (Debian 12's 10.0) lack THREAD_POWER_THROTTLING_STATE, which
# ggml uses to keep Windows 11 from throttling its threads: mingw_compat.h then comes first in
# every C file.
if(NOT DEFINED CROSSMODAL_HAVE_THROTTLING)
  include(CheckCSourceCompiles)
  check_c_source_compiles("#include <windows.h>
int main(void) { THREAD_POWER_THROTTLING_STATE t; t.Version = 1; return (int) t.Version; }"
    CROSSMODAL_HAVE_THROTTLING)
endif()
if(NOT CROSSMODAL_HAVE_THROTTLING)
  add_compile_options("$<$<COMPILE_LANGUAGE:C>:SHELL:-include ${CMAKE_CURRENT_LIST_DIR}/mingw_compat.h>")
endif()
