/* An empty tc program: the baseline of bench/datapath_overhead.py's run-time figure. The
 * kernel's BPF statistics add their own cost (two clock reads per run) to every program; this
 * program's run time is that cost alone. */
#include <uapi/linux/pkt_cls.h>

int fs_bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}
