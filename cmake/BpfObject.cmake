# bpf_object(<name> <source.bpf.c> [HEADERS h...]): compiles a BPF C program
# with clang (-O2 -g -target bpf, UAPI headers from the multiarch include dir,
# no vmlinux.h) into <build>/bpf/<name>.bpf.o, generates the libbpf skeleton
# <build>/bpf/<name>.skel.h with `bpftool gen skeleton ... name <name>`, and
# defines the INTERFACE target <name>_skel (include dir + libbpf). Only the
# loader (huginn-privhelper) and its tests link it.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch OUTPUT_VARIABLE HUGINN_MULTIARCH
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT HUGINN_MULTIARCH)
  set(HUGINN_MULTIARCH "${CMAKE_LIBRARY_ARCHITECTURE}")
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(HUGINN_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(HUGINN_BPF_ARCH arm64)
else()
  set(HUGINN_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(bpf_object name source)
  cmake_parse_arguments(ARG "" "" "HEADERS" ${ARGN})
  set(out_dir ${CMAKE_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  get_filename_component(src_abs ${source} ABSOLUTE)
  get_filename_component(src_dir ${src_abs} DIRECTORY)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${BPF_CLANG} -O2 -g -Wall -Werror -target bpf -mcpu=v3 -D__TARGET_ARCH_${HUGINN_BPF_ARCH}
            -I/usr/include/${HUGINN_MULTIARCH} -I${src_dir} -c ${src_abs} -o ${obj}
    DEPENDS ${src_abs} ${ARG_HEADERS}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir} ${src_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
