/**
 * Real output captured from a throwaway namespace (iproute2 6.1, kernel 6.18), verbatim:
 *  - veth pair ctve-a1/ctve-b1 (ctve-a1 up, 192.0.2.1/24: the VTEP address),
 *  - bridge ctbr-1 (mtu 1450, up, 10.10.0.1/24 plus the kernel's IPv6 link-local),
 *  - ctvx-1: vxlan id 4242 dstport 4789 local 192.0.2.1 nolearning proxy, master ctbr-1, up,
 *  - ctvx-2: vxlan id 4243 with learning on and proxy off, down,
 *  - FDB on ctvx-1: two permanent MACs, the all-zero flood entry with two remotes (printed
 *    as two entries), one dynamic entry (state ""), the bridge's own local-MAC entry
 *    (master, no self); the multicast entries of every device,
 *  - neighbours on ctvx-1: two PERMANENT, STALE, FAILED (no lladdr), an IPv6 one; FAILED
 *    ones for the remote VTEPs on ctve-a1 (the kernel tried to resolve them).
 * Regenerate with the command in each comment, in a namespace built the same way.
 */

/** ip -j -d link show */
export const LINKS_JSON = `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","promiscuity":0,"allmulti":0,"min_mtu":0,"max_mtu":0,"inet6_addr_gen_mode":"eui64","num_tx_queues":1,"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs":65535,"gro_max_size":65536},{"ifindex":2,"link":"ctve-a1","ifname":"ctve-b1","flags":["BROADCAST","MULTICAST"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":"6e:7f:42:a2:9d:ef","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":65535,"linkinfo":{"info_kind":"veth"},"inet6_addr_gen_mode":"eui64","num_tx_queues":2,"num_rx_queues":2,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs":65535,"gro_max_size":65536},{"ifindex":3,"link":"ctve-b1","ifname":"ctve-a1","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP","M-DOWN"],"mtu":1500,"qdisc":"noqueue","operstate":"LOWERLAYERDOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":"16:5a:2a:ce:88:7e","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":65535,"linkinfo":{"info_kind":"veth"},"inet6_addr_gen_mode":"eui64","num_tx_queues":2,"num_rx_queues":2,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs":65535,"gro_max_size":65536},{"ifindex":4,"ifname":"ctbr-1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"qdisc":"noqueue","operstate":"UP","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":"e2:66:1f:f1:e0:30","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":65535,"linkinfo":{"info_kind":"bridge","info_data":{"forward_delay":1500,"hello_time":200,"max_age":2000,"ageing_time":30000,"stp_state":0,"priority":32768,"vlan_filtering":0,"bridge_id":"8000.e2:66:1f:f1:e0:30","root_id":"8000.e2:66:1f:f1:e0:30","root_port":0,"root_path_cost":0,"topology_change":0,"topology_change_detected":0,"hello_timer":0.00,"tcn_timer":0.00,"topology_change_timer":0.00,"gc_timer":115.86,"group_fwd_mask":"0","group_addr":"01:80:c2:00:00:00","mcast_snooping":1,"no_linklocal_learn":0,"mcast_vlan_snooping":0,"mcast_router":1,"mcast_query_use_ifaddr":0,"mcast_querier":0,"mcast_hash_elasticity":16,"mcast_hash_max":4096,"mcast_last_member_cnt":2,"mcast_startup_query_cnt":2,"mcast_last_member_intvl":100,"mcast_membership_intvl":26000,"mcast_querier_intvl":25500,"mcast_query_intvl":12500,"mcast_query_response_intvl":1000,"mcast_startup_query_intvl":3124,"mcast_stats_enabled":0,"mcast_igmp_version":2,"mcast_mld_version":1,"nf_call_iptables":0,"nf_call_ip6tables":0,"nf_call_arptables":0}},"inet6_addr_gen_mode":"eui64","num_tx_queues":1,"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":65536,"tso_max_segs":65535,"gro_max_size":65536},{"ifindex":5,"ifname":"ctvx-1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"qdisc":"noqueue","master":"ctbr-1","operstate":"UNKNOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":"e2:66:1f:f1:e0:30","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":1,"allmulti":1,"min_mtu":68,"max_mtu":65535,"linkinfo":{"info_kind":"vxlan","info_data":{"id":4242,"local":"192.0.2.1","port_range":{"low":0,"high":0},"port":4789,"learning":false,"proxy":true,"ttl":0,"df":"unset","ageing":300,"udp_csum":true,"udp_zero_csum6_tx":false,"udp_zero_csum6_rx":false},"info_slave_kind":"bridge","info_slave_data":{"state":"forwarding","priority":32,"cost":100,"hairpin":false,"guard":false,"root_block":false,"fastleave":false,"learning":true,"flood":true,"id":"0x8001","no":"0x1","designated_port":32769,"designated_cost":0,"bridge_id":"8000.e2:66:1f:f1:e0:30","root_id":"8000.e2:66:1f:f1:e0:30","hold_timer":0.00,"message_age_timer":0.00,"forward_delay_timer":0.00,"topology_change_ack":0,"config_pending":0,"proxy_arp":false,"proxy_arp_wifi":false,"multicast_router":1,"mcast_flood":true,"bcast_flood":true,"mcast_to_unicast":false,"neigh_suppress":false,"group_fwd_mask":"0","group_fwd_mask_str":"0x0","vlan_tunnel":false,"isolated":false,"locked":false}},"inet6_addr_gen_mode":"eui64","num_tx_queues":1,"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":65536,"tso_max_segs":65535,"gro_max_size":65536},{"ifindex":6,"ifname":"ctvx-2","flags":["BROADCAST","MULTICAST"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":"0a:46:f7:14:c7:7c","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":65535,"linkinfo":{"info_kind":"vxlan","info_data":{"id":4243,"local":"192.0.2.1","port_range":{"low":0,"high":0},"port":4789,"learning":true,"ttl":0,"df":"unset","ageing":300,"udp_csum":true,"udp_zero_csum6_tx":false,"udp_zero_csum6_rx":false}},"inet6_addr_gen_mode":"eui64","num_tx_queues":1,"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":65536,"tso_max_segs":65535,"gro_max_size":65536}]`;

/** ip -j addr show */
export const ADDRS_JSON = `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":2,"link":"ctve-a1","ifname":"ctve-b1","flags":["BROADCAST","MULTICAST"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":1000,"link_type":"ether","address":"6e:7f:42:a2:9d:ef","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},{"ifindex":3,"link":"ctve-b1","ifname":"ctve-a1","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP","M-DOWN"],"mtu":1500,"qdisc":"noqueue","operstate":"LOWERLAYERDOWN","group":"default","txqlen":1000,"link_type":"ether","address":"16:5a:2a:ce:88:7e","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"192.0.2.1","prefixlen":24,"scope":"global","label":"ctve-a1","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":4,"ifname":"ctbr-1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"e2:66:1f:f1:e0:30","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"10.10.0.1","prefixlen":24,"scope":"global","label":"ctbr-1","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::e066:1fff:fef1:e030","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":5,"ifname":"ctvx-1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"qdisc":"noqueue","master":"ctbr-1","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"ether","address":"e2:66:1f:f1:e0:30","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet6","local":"fe80::e066:1fff:fef1:e030","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":6,"ifname":"ctvx-2","flags":["BROADCAST","MULTICAST"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":1000,"link_type":"ether","address":"0a:46:f7:14:c7:7c","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]}]`;

/** bridge -j fdb show */
export const FDB_JSON = `[{"mac":"33:33:00:00:00:01","ifname":"ctve-b1","flags":["self"],"state":"permanent"},{"mac":"33:33:00:00:00:01","ifname":"ctve-a1","flags":["self"],"state":"permanent"},{"mac":"01:00:5e:00:00:01","ifname":"ctve-a1","flags":["self"],"state":"permanent"},{"mac":"33:33:00:00:00:01","ifname":"ctbr-1","flags":["self"],"state":"permanent"},{"mac":"01:00:5e:00:00:6a","ifname":"ctbr-1","flags":["self"],"state":"permanent"},{"mac":"33:33:00:00:00:6a","ifname":"ctbr-1","flags":["self"],"state":"permanent"},{"mac":"01:00:5e:00:00:01","ifname":"ctbr-1","flags":["self"],"state":"permanent"},{"mac":"33:33:ff:f1:e0:30","ifname":"ctbr-1","flags":["self"],"state":"permanent"},{"mac":"e2:66:1f:f1:e0:30","ifname":"ctvx-1","flags":[],"master":"ctbr-1","state":"permanent"},{"mac":"02:42:0a:0a:00:14","ifname":"ctvx-1","dst":"192.0.2.4","flags":["self"],"state":"permanent"},{"mac":"02:42:0a:0a:00:09","ifname":"ctvx-1","dst":"192.0.2.9","flags":["self"],"state":""},{"mac":"00:00:00:00:00:00","ifname":"ctvx-1","dst":"192.0.2.2","flags":["self"],"state":"permanent"},{"mac":"00:00:00:00:00:00","ifname":"ctvx-1","dst":"192.0.2.3","flags":["self"],"state":"permanent"},{"mac":"02:42:0a:0a:00:02","ifname":"ctvx-1","dst":"192.0.2.2","flags":["self"],"state":"permanent"}]`;

/** ip -j neigh show */
export const NEIGH_JSON = `[{"dst":"10.10.0.4","dev":"ctvx-1","state":["FAILED"]},{"dst":"10.10.0.20","dev":"ctvx-1","lladdr":"02:42:0a:0a:00:14","state":["PERMANENT"]},{"dst":"192.0.2.3","dev":"ctve-a1","state":["FAILED"]},{"dst":"10.10.0.2","dev":"ctvx-1","lladdr":"02:42:0a:0a:00:02","state":["PERMANENT"]},{"dst":"192.0.2.2","dev":"ctve-a1","state":["FAILED"]},{"dst":"10.10.0.3","dev":"ctvx-1","lladdr":"02:42:0a:0a:00:03","state":["STALE"]},{"dst":"fe80::2","dev":"ctvx-1","lladdr":"02:42:0a:0a:00:02","state":["PERMANENT"]}]`;

/**
 * stderr of `ip -n NS -force -batch -` for buildScript('ip', ...) of: neigh-replace on ctvx-1,
 * neigh-replace on missing nope0, addr-add of 10.10.0.1/24 already on ctbr-1, link-set of
 * ctvx-2 with missing master nobr0 (iproute2 exits 255 there), link-set ctvx-2 mtu 1400
 * (never run). Exit status 255.
 */
export const IP_BATCH_STDERR_ABORTED = [
  'Not enough information: "dev" argument is required.',
  'Command failed -:1',
  'Not enough information: "dev" argument is required.',
  'Command failed -:3',
  'Cannot find device "nope0"',
  'Command failed -:4',
  'Not enough information: "dev" argument is required.',
  'Command failed -:5',
  'Error: ipv4: Address already assigned.',
  'Command failed -:6',
  'Not enough information: "dev" argument is required.',
  'Command failed -:7',
  'Error: argument "nobr0" is wrong: Device does not exist',
  '',
].join('\n');

/**
 * stderr of `bridge -n NS -force -batch -` for buildScript('bridge', ...) of: fdb-replace on
 * ctvx-1, fdb-replace on missing nope0, fdb-del of an absent MAC on ctvx-1. Exit status 1.
 */
export const BRIDGE_BATCH_STDERR = [
  'Device and address are required arguments.',
  'Command failed -:1',
  'Device and address are required arguments.',
  'Command failed -:3',
  'Cannot find device "nope0"',
  'Command failed -:4',
  'Device and address are required arguments.',
  'Command failed -:5',
  'RTNETLINK answers: No such file or directory',
  'Command failed -:6',
  'Device and address are required arguments.',
  'Command failed -:7',
].join('\n');
