# Included right after project() when an interface package is built against the ROS 2 PyPI
# wheels (CMAKE_PROJECT_INCLUDE). The wheels' exported CMake targets name include directories
# of the machine that built them (/opt/python/cp311-cp311/...); CMake refuses to generate with
# an imported target pointing at a directory that does not exist. At the end of configuration,
# drop such directories from every imported target: the package's own Python extension gets
# the local Python and NumPy include directories from rosidl_generator_py.
cmake_minimum_required(VERSION 3.21)

function(_slfm_drop_missing_include_dirs)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs "${_target}" INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_kept "")
    set(_dropped "")
    foreach(_dir IN LISTS _dirs)
      if(_dir MATCHES "^\\$<" OR EXISTS "${_dir}")
        list(APPEND _kept "${_dir}")
      else()
        list(APPEND _dropped "${_dir}")
      endif()
    endforeach()
    if(_dropped)
      message(STATUS "${_target}: ignoring missing include directories ${_dropped}")
      set_target_properties("${_target}" PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _slfm_drop_missing_include_dirs)
