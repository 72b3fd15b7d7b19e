#include <signal.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Asks the kernel to send `sig` to this process when the thread that started it ends
   (prctl is variadic, which Swift cannot call). */
static inline int pgsnap_die_with_parent(int sig) {
#ifdef __linux__
    return prctl(PR_SET_PDEATHSIG, sig);
#else
    (void)sig;
    return 0;
#endif
}
