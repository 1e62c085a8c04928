/*
 * tmplcmd: `hcowctl template add|list|warm`, the templates of a template
 * dir, local or in a pool (rados:POOL[/NS]).  These act on the dir and the
 * cluster directly, not through a mount: a template is published once, from
 * any host, mounted or not; `warm` fills a host's cache dir, which its
 * mounts share (tcache.h).
 */
#ifndef HCOWFS_TMPLCMD_H
#define HCOWFS_TMPLCMD_H

/* argv[0] is "template".  Exit status: 0 done, 1 failed, 2 usage. */
int tmplcmd_main(int argc, char **argv);

#endif
