#include <signal.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/xattr.h>
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
