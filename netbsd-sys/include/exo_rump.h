/*
 * ExoV6's description of what a file server calls in a NetBSD rump
 * kernel: the entry point (rump(3)), host-file registration
 * (rump_etfs(3)), the file system calls (rump_sys_*), and the NetBSD ABI
 * types they pass, as laid out on NetBSD/amd64. Written for this project
 * from the manual pages and the NetBSD ABI; bindgen turns it into Rust.
 *
 * The system calls are linked under the names the rump kernel exports
 * (rump___sysimpl_*): its <rump/rump_syscalls.h> renames them the same
 * way. The includer provides <stdint.h> and <stddef.h>.
 */
#ifndef EXO_RUMP_H
#define EXO_RUMP_H

/* NetBSD's scalar types (amd64). */
typedef uint64_t netbsd_dev_t;
typedef uint32_t netbsd_mode_t;
typedef uint64_t netbsd_ino_t;
typedef uint32_t netbsd_nlink_t;
typedef uint32_t netbsd_uid_t;
typedef uint32_t netbsd_gid_t;
typedef int64_t netbsd_off_t;
typedef int64_t netbsd_blkcnt_t;
typedef int32_t netbsd_blksize_t;
typedef int64_t netbsd_time_t;
typedef unsigned long netbsd_u_long;
typedef int64_t netbsd_ssize_t;

struct netbsd_timespec {
	netbsd_time_t tv_sec;
	long tv_nsec;
};

/* struct stat, as rump_sys_stat (__stat50) fills it. */
struct netbsd_stat {
	netbsd_dev_t st_dev;
	netbsd_mode_t st_mode;
	netbsd_ino_t st_ino;
	netbsd_nlink_t st_nlink;
	netbsd_uid_t st_uid;
	netbsd_gid_t st_gid;
	netbsd_dev_t st_rdev;
	struct netbsd_timespec st_atim;
	struct netbsd_timespec st_mtim;
	struct netbsd_timespec st_ctim;
	struct netbsd_timespec st_birthtim;
	netbsd_off_t st_size;
	netbsd_blkcnt_t st_blocks;
	netbsd_blksize_t st_blksize;
	uint32_t st_flags;
	uint32_t st_gen;
	uint32_t st_spare[2];
};

/* File type bits of st_mode. */
#define NETBSD_S_IFMT   0170000
#define NETBSD_S_IFIFO  0010000
#define NETBSD_S_IFCHR  0020000
#define NETBSD_S_IFDIR  0040000
#define NETBSD_S_IFBLK  0060000
#define NETBSD_S_IFREG  0100000
#define NETBSD_S_IFLNK  0120000
#define NETBSD_S_IFSOCK 0140000

/* struct dirent, as rump_sys_getdents (__getdents30) packs them. */
#define NETBSD_MAXNAMLEN 511
struct netbsd_dirent {
	netbsd_ino_t d_fileno;
	uint16_t d_reclen;
	uint16_t d_namlen;
	uint8_t d_type;
	char d_name[NETBSD_MAXNAMLEN + 1];
};
#define NETBSD_DT_UNKNOWN 0
#define NETBSD_DT_FIFO    1
#define NETBSD_DT_CHR     2
#define NETBSD_DT_DIR     4
#define NETBSD_DT_BLK     6
#define NETBSD_DT_REG     8
#define NETBSD_DT_LNK     10
#define NETBSD_DT_SOCK    12
#define NETBSD_DT_WHT     14

/* errno values (what rump_sys_* calls leave in errno, and what every
 * rumpuser hypercall returns). */
#define NETBSD_EPERM 1
#define NETBSD_ENOENT 2
#define NETBSD_ESRCH 3
#define NETBSD_EINTR 4
#define NETBSD_EIO 5
#define NETBSD_ENXIO 6
#define NETBSD_E2BIG 7
#define NETBSD_ENOEXEC 8
#define NETBSD_EBADF 9
#define NETBSD_ECHILD 10
#define NETBSD_EDEADLK 11
#define NETBSD_ENOMEM 12
#define NETBSD_EACCES 13
#define NETBSD_EFAULT 14
#define NETBSD_ENOTBLK 15
#define NETBSD_EBUSY 16
#define NETBSD_EEXIST 17
#define NETBSD_EXDEV 18
#define NETBSD_ENODEV 19
#define NETBSD_ENOTDIR 20
#define NETBSD_EISDIR 21
#define NETBSD_EINVAL 22
#define NETBSD_ENFILE 23
#define NETBSD_EMFILE 24
#define NETBSD_ENOTTY 25
#define NETBSD_ETXTBSY 26
#define NETBSD_EFBIG 27
#define NETBSD_ENOSPC 28
#define NETBSD_ESPIPE 29
#define NETBSD_EROFS 30
#define NETBSD_EMLINK 31
#define NETBSD_EPIPE 32
#define NETBSD_EDOM 33
#define NETBSD_ERANGE 34
#define NETBSD_EAGAIN 35
#define NETBSD_EINPROGRESS 36
#define NETBSD_EALREADY 37
#define NETBSD_ENOTSOCK 38
#define NETBSD_EDESTADDRREQ 39
#define NETBSD_EMSGSIZE 40
#define NETBSD_EPROTOTYPE 41
#define NETBSD_ENOPROTOOPT 42
#define NETBSD_EPROTONOSUPPORT 43
#define NETBSD_ESOCKTNOSUPPORT 44
#define NETBSD_EOPNOTSUPP 45
#define NETBSD_EPFNOSUPPORT 46
#define NETBSD_EAFNOSUPPORT 47
#define NETBSD_EADDRINUSE 48
#define NETBSD_EADDRNOTAVAIL 49
#define NETBSD_ENETDOWN 50
#define NETBSD_ENETUNREACH 51
#define NETBSD_ENETRESET 52
#define NETBSD_ECONNABORTED 53
#define NETBSD_ECONNRESET 54
#define NETBSD_ENOBUFS 55
#define NETBSD_EISCONN 56
#define NETBSD_ENOTCONN 57
#define NETBSD_ESHUTDOWN 58
#define NETBSD_ETOOMANYREFS 59
#define NETBSD_ETIMEDOUT 60
#define NETBSD_ECONNREFUSED 61
#define NETBSD_ELOOP 62
#define NETBSD_ENAMETOOLONG 63
#define NETBSD_EHOSTDOWN 64
#define NETBSD_EHOSTUNREACH 65
#define NETBSD_ENOTEMPTY 66
#define NETBSD_EDQUOT 69
#define NETBSD_ESTALE 70
#define NETBSD_EPROGMISMATCH 75
#define NETBSD_ENOLCK 77
#define NETBSD_ENOSYS 78
#define NETBSD_EOVERFLOW 84
#define NETBSD_EILSEQ 85
#define NETBSD_ENOTSUP 86
#define NETBSD_ECANCELED 87
#define NETBSD_ENOATTR 93

/* open(2) flags. */
#define NETBSD_O_RDONLY    0x00000000
#define NETBSD_O_WRONLY    0x00000001
#define NETBSD_O_RDWR      0x00000002
#define NETBSD_O_CREAT     0x00000200
#define NETBSD_O_TRUNC     0x00000400
#define NETBSD_O_EXCL      0x00000800
#define NETBSD_O_NOFOLLOW  0x00000100
#define NETBSD_O_DIRECTORY 0x00200000

/* mount(2): flags, file system names and their arguments. */
#define NETBSD_MNT_RDONLY 0x00000001
#define NETBSD_MNT_NOATIME 0x04000000
#define NETBSD_MOUNT_FFS    "ffs"
#define NETBSD_MOUNT_EXT2FS "ext2fs"
#define NETBSD_MOUNT_MSDOS  "msdos"

/* ffs and ext2fs */
struct netbsd_ufs_args {
	char *fspec;
};

#define NETBSD_NGROUPS_MAX 16
struct netbsd_uucred {
	unsigned short cr_unused;
	netbsd_uid_t cr_uid;
	netbsd_gid_t cr_gid;
	short cr_ngroups;
	netbsd_gid_t cr_groups[NETBSD_NGROUPS_MAX];
};

struct netbsd_sockaddr;
struct netbsd_export_args30 {
	int ex_flags;
	netbsd_uid_t ex_root;
	struct netbsd_uucred ex_anon;
	struct netbsd_sockaddr *ex_addr;
	int ex_addrlen;
	struct netbsd_sockaddr *ex_mask;
	int ex_masklen;
	char *ex_indexfile;
};

/* msdos */
#define NETBSD_MSDOSFSMNT_VERSION 3
#define NETBSD_MSDOSFSMNT_LONGNAME  2
#define NETBSD_MSDOSFSMNT_VERSIONED 16
#define NETBSD_MSDOSFSMNT_UTF8      32
struct netbsd_msdosfs_args {
	char *fspec;
	struct netbsd_export_args30 _pad1;
	netbsd_uid_t uid;
	netbsd_gid_t gid;
	netbsd_mode_t mask;
	int flags;
	int version;
	netbsd_mode_t dirmask;
	int gmtoff;
};

/* rump(3): bring the rump kernel up. */
int rump_init(void);

/* rump_etfs(3): make a host file (for us: a rumpglue device name) visible
 * in the rump kernel's namespace. */
enum rump_etfs_type {
	RUMP_ETFS_REG,
	RUMP_ETFS_BLK,
	RUMP_ETFS_CHR,
	RUMP_ETFS_DIR,
	RUMP_ETFS_DIR_SUBDIRS
};
#define RUMP_ETFS_SIZE_ENDOFF ((uint64_t)-1)
int rump_pub_etfs_register(const char *key, const char *hostpath, enum rump_etfs_type ftype);
int rump_pub_etfs_register_withsize(const char *key, const char *hostpath, enum rump_etfs_type ftype,
				    uint64_t begin, uint64_t size);
int rump_pub_etfs_remove(const char *key);

/* System calls into the rump kernel: -1 and the rump thread's errno
 * (rumpuser_seterrno) on failure. */
int rump_sys_open(const char *path, int flags, ...) __asm__("rump___sysimpl_open");
int rump_sys_close(int fd) __asm__("rump___sysimpl_close");
netbsd_ssize_t rump_sys_read(int fd, void *buf, size_t nbyte) __asm__("rump___sysimpl_read");
netbsd_ssize_t rump_sys_pread(int fd, void *buf, size_t nbyte, netbsd_off_t offset) __asm__("rump___sysimpl_pread");
netbsd_ssize_t rump_sys_pwrite(int fd, const void *buf, size_t nbyte, netbsd_off_t offset)
	__asm__("rump___sysimpl_pwrite");
int rump_sys_stat(const char *path, struct netbsd_stat *sb) __asm__("rump___sysimpl_stat50");
int rump_sys_lstat(const char *path, struct netbsd_stat *sb) __asm__("rump___sysimpl_lstat50");
int rump_sys_fstat(int fd, struct netbsd_stat *sb) __asm__("rump___sysimpl_fstat50");
int rump_sys_getdents(int fd, char *buf, size_t nbytes) __asm__("rump___sysimpl_getdents30");
netbsd_ssize_t rump_sys_readlink(const char *path, char *buf, size_t bufsize) __asm__("rump___sysimpl_readlink");
int rump_sys_mkdir(const char *path, netbsd_mode_t mode) __asm__("rump___sysimpl_mkdir");
int rump_sys_unlink(const char *path) __asm__("rump___sysimpl_unlink");
int rump_sys_rmdir(const char *path) __asm__("rump___sysimpl_rmdir");
int rump_sys_rename(const char *from, const char *to) __asm__("rump___sysimpl_rename");
int rump_sys_fsync(int fd) __asm__("rump___sysimpl_fsync");
int rump_sys_mount(const char *type, const char *path, int flags, void *data, size_t data_len)
	__asm__("rump___sysimpl_mount50");
int rump_sys_unmount(const char *path, int flags) __asm__("rump___sysimpl_unmount");
int rump_sys_ioctl(int fd, netbsd_u_long com, ...) __asm__("rump___sysimpl_ioctl");

/* Disk ioctls (sys/dkio.h): _IOR('d', 132, off_t), _IOR('d', 133, u_int). */
#define NETBSD_DIOCGMEDIASIZE   0x40086484UL
#define NETBSD_DIOCGSECTORSIZE  0x40046485UL

#endif /* EXO_RUMP_H */
