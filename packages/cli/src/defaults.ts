/** Where `ctmgr` reads the admin credential on a manager host (written by `ctmgr serve`). */
export const DEFAULT_TLS_DIR = '/var/lib/ctnet/admin';
