/* Declarations that MinGW-w64 headers older than the Windows 10 SDK's lack (Debian 12's 10.0
 * among them), as Microsoft documents them (processthreadsapi.h, SetThreadInformation): ggml asks
 * Windows not to throttle its worker threads with them. Included first in whisper.cpp's C files
 * only when the headers lack them (scripts/windows_build.sh). */
#ifndef CROSSMODAL_MINGW_COMPAT_H
#define CROSSMODAL_MINGW_COMPAT_H
#define THREAD_POWER_THROTTLING_CURRENT_VERSION 1
#define THREAD_POWER_THROTTLING_EXECUTION_SPEED 0x1
#define THREAD_POWER_THROTTLING_VALID_FLAGS THREAD_POWER_THROTTLING_EXECUTION_SPEED
typedef struct _THREAD_POWER_THROTTLING_STATE {
    unsigned long Version;
    unsigned long ControlMask;
    unsigned long StateMask;
} THREAD_POWER_THROTTLING_STATE;
#endif
