/* For checks under Wine 8 only (Debian 12's; never shipped): Rust's standard library asks Windows
 * 10 and 11 for random bytes through bcryptprimitives.dll's ProcessPrng, which Wine gained only
 * in 9.0. This stand-in gives them from RtlGenRandom (advapi32's SystemFunction036).
 * scripts/package.sh check-windows builds it into the Wine prefix when Wine lacks the DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG) length;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
