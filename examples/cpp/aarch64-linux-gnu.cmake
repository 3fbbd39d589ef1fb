# Cross-compiling edgeae_encode for 64-bit ARM Linux (Raspberry Pi OS 64-bit, Jetson, Graviton)
# on an x86-64 Debian/Ubuntu machine (apt-get install g++-aarch64-linux-gnu):
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=aarch64-linux-gnu.cmake \
#         -DORT_DIR=ORT_ARM64 -DCODEC_DIR=codec && cmake --build build-arm64
# ORT_ARM64: include/ (the headers setup_ort.sh fetched into ort/include) and lib/ with the
# libonnxruntime.so of PyPI's aarch64 onnxruntime wheel (tools/arm64_sysroot.sh makes
# build/arm64/ort/lib). On the device, put that library next to the program or on its rpath.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
