#include <signal.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#endif

/* The size of extended attribute `name` of `path` (following links), -1 when it has none. */
static inline long pgsnap_xattr_size(const char *path, const char *name) {
#ifdef __linux__
    return (long)getxattr(path, name, 0, 0);
#else
    (void)path; (void)name;
    return -1;
#endif
}

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

/* Sends `sig` to thread `tid` of process `pid` only (the tests: a signal that a process's main
   thread handles itself, not whichever thread runs first; glibc's tgkill is not visible to Swift). */
static inline int pgsnap_tgkill(int pid, int tid, int sig) {
#ifdef __linux__
    return (int)syscall(SYS_tgkill, pid, tid, sig);
#else
    (void)tid;
    return kill(pid, sig);
#endif
}
