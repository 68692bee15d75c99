CREATE DATABASE IF NOT EXISTS flowscope ON CLUSTER flows_cluster;

CREATE TABLE IF NOT EXISTS flowscope.schema_version_local ON CLUSTER flows_cluster
(
    version UInt32,
    applied DateTime('UTC') DEFAULT now()
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/flowscope/schema_version_local', '{replica}')
ORDER BY version;

CREATE TABLE IF NOT EXISTS flowscope.flows_local ON CLUSTER flows_cluster
(
    time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    node_name LowCardinality(String),
    node_sequence UInt64 CODEC(Delta, ZSTD(1)),
    node_labels Array(LowCardinality(String)),
    stored_uuid String CODEC(ZSTD(1)),
    uuid String ALIAS if(stored_uuid = '' AND node_sequence != 0, concat(substring(lower(hex(MD5(node_name))), 1, 8), '-', substring(lower(hex(MD5(node_name))), 9, 4), '-8', substring(lower(hex(MD5(node_name))), 14, 3), '-', substring(lower(hex(bitOr(bitAnd(node_sequence, 0x3FFFFFFFFFFFFFFF), 0x8000000000000000))), 1, 4), '-', substring(lower(hex(bitOr(bitAnd(node_sequence, 0x3FFFFFFFFFFFFFFF), 0x8000000000000000))), 5, 12)), stored_uuid),
    verdict Enum8('VERDICT_UNKNOWN' = 0, 'FORWARDED' = 1, 'DROPPED' = 2, 'ERROR' = 3, 'AUDIT' = 4, 'REDIRECTED' = 5, 'TRACED' = 6, 'TRANSLATED' = 7),
    drop_reason_desc Enum16('DROP_REASON_UNKNOWN' = 0, 'INVALID_SOURCE_MAC' = 130, 'INVALID_DESTINATION_MAC' = 131, 'INVALID_SOURCE_IP' = 132, 'POLICY_DENIED' = 133, 'INVALID_PACKET_DROPPED' = 134, 'CT_TRUNCATED_OR_INVALID_HEADER' = 135, 'CT_MISSING_TCP_ACK_FLAG' = 136, 'CT_UNKNOWN_L4_PROTOCOL' = 137, 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET' = 138, 'UNSUPPORTED_L3_PROTOCOL' = 139, 'MISSED_TAIL_CALL' = 140, 'ERROR_WRITING_TO_PACKET' = 141, 'UNKNOWN_L4_PROTOCOL' = 142, 'UNKNOWN_ICMPV4_CODE' = 143, 'UNKNOWN_ICMPV4_TYPE' = 144, 'UNKNOWN_ICMPV6_CODE' = 145, 'UNKNOWN_ICMPV6_TYPE' = 146, 'ERROR_RETRIEVING_TUNNEL_KEY' = 147, 'ERROR_RETRIEVING_TUNNEL_OPTIONS' = 148, 'INVALID_GENEVE_OPTION' = 149, 'UNKNOWN_L3_TARGET_ADDRESS' = 150, 'STALE_OR_UNROUTABLE_IP' = 151, 'NO_MATCHING_LOCAL_CONTAINER_FOUND' = 152, 'ERROR_WHILE_CORRECTING_L3_CHECKSUM' = 153, 'ERROR_WHILE_CORRECTING_L4_CHECKSUM' = 154, 'CT_MAP_INSERTION_FAILED' = 155, 'INVALID_IPV6_EXTENSION_HEADER' = 156, 'IP_FRAGMENTATION_NOT_SUPPORTED' = 157, 'SERVICE_BACKEND_NOT_FOUND' = 158, 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT' = 160, 'FAILED_TO_INSERT_INTO_PROXYMAP' = 161, 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON' = 162, 'UNKNOWN_CONNECTION_TRACKING_STATE' = 163, 'LOCAL_HOST_IS_UNREACHABLE' = 164, 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION' = 165, 'UNSUPPORTED_L2_PROTOCOL' = 166, 'NO_MAPPING_FOR_NAT_MASQUERADE' = 167, 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE' = 168, 'FIB_LOOKUP_FAILED' = 169, 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED' = 170, 'INVALID_IDENTITY' = 171, 'UNKNOWN_SENDER' = 172, 'NAT_NOT_NEEDED' = 173, 'IS_A_CLUSTERIP' = 174, 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND' = 175, 'FORBIDDEN_ICMPV6_MESSAGE' = 176, 'DENIED_BY_LB_SRC_RANGE_CHECK' = 177, 'SOCKET_LOOKUP_FAILED' = 178, 'SOCKET_ASSIGN_FAILED' = 179, 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL' = 180, 'POLICY_DENY' = 181, 'VLAN_FILTERED' = 182, 'INVALID_VNI' = 183, 'INVALID_TC_BUFFER' = 184, 'NO_SID' = 185, 'MISSING_SRV6_STATE' = 186, 'NAT46' = 187, 'NAT64' = 188, 'AUTH_REQUIRED' = 189, 'CT_NO_MAP_FOUND' = 190, 'SNAT_NO_MAP_FOUND' = 191, 'INVALID_CLUSTER_ID' = 192, 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP' = 193, 'NO_EGRESS_GATEWAY' = 194, 'UNENCRYPTED_TRAFFIC' = 195, 'TTL_EXCEEDED' = 196, 'NO_NODE_ID' = 197, 'DROP_RATE_LIMITED' = 198, 'IGMP_HANDLED' = 199, 'IGMP_SUBSCRIBED' = 200, 'MULTICAST_HANDLED' = 201, 'DROP_HOST_NOT_READY' = 202, 'DROP_EP_NOT_READY' = 203, 'DROP_NO_EGRESS_IP' = 204, 'DROP_PUNT_PROXY' = 205),
    kernel_drop_reason LowCardinality(String),
    auth_type Enum8('DISABLED' = 0, 'SPIRE' = 1, 'TEST_ALWAYS_FAIL' = 2),
    flow_type Enum8('UNKNOWN_TYPE' = 0, 'L3_L4' = 1, 'L7' = 2, 'SOCK' = 3),
    event_type Int32,
    event_sub_type Int32 CODEC(ZSTD(1)),
    trace_observation_point Enum8('UNKNOWN_POINT' = 0, 'TO_PROXY' = 1, 'TO_HOST' = 2, 'TO_STACK' = 3, 'TO_OVERLAY' = 4, 'TO_ENDPOINT' = 101, 'FROM_ENDPOINT' = 5, 'FROM_PROXY' = 6, 'FROM_HOST' = 7, 'FROM_STACK' = 8, 'FROM_OVERLAY' = 9, 'FROM_NETWORK' = 10, 'TO_NETWORK' = 11, 'FROM_CRYPTO' = 12, 'TO_CRYPTO' = 13),
    trace_reason Enum8('TRACE_REASON_UNKNOWN' = 0, 'NEW' = 1, 'ESTABLISHED' = 2, 'REPLY' = 3, 'RELATED' = 4, 'REOPENED' = 5, 'SRV6_ENCAP' = 6, 'SRV6_DECAP' = 7, 'ENCRYPT_OVERLAY' = 8),
    policy_match_type UInt32,
    traffic_direction Enum8('TRAFFIC_DIRECTION_UNKNOWN' = 0, 'INGRESS' = 1, 'EGRESS' = 2),
    is_reply Nullable(Bool),
    ip_version Enum8('IP_NOT_USED' = 0, 'IPv4' = 1, 'IPv6' = 2),
    source_ip Nullable(IPv6) CODEC(ZSTD(1)),
    source_ip_xlated Nullable(IPv6) CODEC(ZSTD(1)),
    destination_ip Nullable(IPv6) CODEC(ZSTD(1)),
    encrypted Bool,
    l4_protocol Enum8('' = 0, 'TCP' = 1, 'UDP' = 2, 'ICMPv4' = 3, 'ICMPv6' = 4, 'SCTP' = 5, 'VRRP' = 6, 'IGMP' = 7),
    source_port UInt32 CODEC(T64, ZSTD(1)),
    destination_port UInt32 CODEC(T64, ZSTD(1)),
    tcp_flags UInt16,
    interface_index UInt32 CODEC(ZSTD(1)),
    interface_name String CODEC(ZSTD(1)),
    ip_trace_id UInt64,
    ip_trace_option_type UInt32,
    trace_id String,
    source_id UInt32 CODEC(ZSTD(1)),
    source_identity UInt32 CODEC(ZSTD(1)),
    source_cluster_name LowCardinality(String),
    source_namespace LowCardinality(String),
    source_pod_name LowCardinality(String),
    source_labels Array(LowCardinality(String)),
    source_workload_names Array(LowCardinality(String)),
    source_workload_kinds Array(LowCardinality(String)),
    source_pid UInt32,
    source_command LowCardinality(String),
    source_names Array(String),
    source_service_name LowCardinality(String),
    source_service_namespace LowCardinality(String),
    destination_id UInt32 CODEC(ZSTD(1)),
    destination_identity UInt32 CODEC(ZSTD(1)),
    destination_cluster_name LowCardinality(String),
    destination_namespace LowCardinality(String),
    destination_pod_name LowCardinality(String),
    destination_labels Array(LowCardinality(String)),
    destination_workload_names Array(LowCardinality(String)),
    destination_workload_kinds Array(LowCardinality(String)),
    destination_pid UInt32,
    destination_command LowCardinality(String),
    destination_names Array(String),
    destination_service_name LowCardinality(String),
    destination_service_namespace LowCardinality(String),
    l7_protocol Enum8('' = 0, 'dns' = 100, 'http' = 101, 'kafka' = 102),
    l7_type Enum8('UNKNOWN_L7_TYPE' = 0, 'REQUEST' = 1, 'RESPONSE' = 2, 'SAMPLE' = 3),
    l7_latency_ns UInt64,
    dns_query String,
    dns_rcode UInt32,
    dns_qtypes Array(LowCardinality(String)),
    http_code UInt32,
    http_method LowCardinality(String),
    http_url String,
    http_path Nullable(String),
    http_protocol LowCardinality(String),
    http_headers Array(Tuple(key String, value String)),
    policy_names Array(LowCardinality(String)),
    packets_forward UInt64 CODEC(T64, ZSTD(1)),
    bytes_forward UInt64 CODEC(T64, ZSTD(1)),
    packets_reply UInt64 CODEC(T64, ZSTD(1)),
    bytes_reply UInt64 CODEC(T64, ZSTD(1)),
    retransmits UInt32 CODEC(T64, ZSTD(1)),
    present UInt16,
    flow String CODEC(ZSTD(3)),
    INDEX source_ip_index source_ip TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX destination_ip_index destination_ip TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX source_port_index source_port TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX destination_port_index destination_port TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/flowscope/flows_local', '{replica}')
ORDER BY (toStartOfFiveMinutes(time), node_name, source_namespace, destination_namespace, verdict, flow_type, time)
PARTITION BY toStartOfInterval(time, toIntervalSecond(25200))
TTL toDateTime(time) + toIntervalSecond(604800)
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS flowscope.flows ON CLUSTER flows_cluster AS flowscope.flows_local
ENGINE = Distributed(flows_cluster, flowscope, flows_local, rand());

CREATE TABLE IF NOT EXISTS flowscope.node_cursors_local ON CLUSTER flows_cluster
(
    node_name LowCardinality(String),
    node_sequence SimpleAggregateFunction(max, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/flowscope/node_cursors_local', '{replica}')
ORDER BY node_name;

CREATE TABLE IF NOT EXISTS flowscope.node_cursors ON CLUSTER flows_cluster AS flowscope.node_cursors_local
ENGINE = Distributed(flows_cluster, flowscope, node_cursors_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS flowscope.node_cursors_local_view ON CLUSTER flows_cluster
TO flowscope.node_cursors_local
AS SELECT node_name, max(node_sequence) AS node_sequence FROM flowscope.flows_local
GROUP BY node_name;

CREATE TABLE IF NOT EXISTS flowscope.edges_1m_local ON CLUSTER flows_cluster
(
    time DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    node_name LowCardinality(String),
    source_namespace LowCardinality(String),
    source_workload_names Array(LowCardinality(String)),
    source_workload_kinds Array(LowCardinality(String)),
    source_identity UInt32 CODEC(ZSTD(1)),
    destination_namespace LowCardinality(String),
    destination_workload_names Array(LowCardinality(String)),
    destination_workload_kinds Array(LowCardinality(String)),
    destination_identity UInt32 CODEC(ZSTD(1)),
    destination_port UInt32 CODEC(T64, ZSTD(1)),
    l4_protocol Enum8('' = 0, 'TCP' = 1, 'UDP' = 2, 'ICMPv4' = 3, 'ICMPv6' = 4, 'SCTP' = 5, 'VRRP' = 6, 'IGMP' = 7),
    l7_protocol Enum8('' = 0, 'dns' = 100, 'http' = 101, 'kafka' = 102),
    verdict Enum8('VERDICT_UNKNOWN' = 0, 'FORWARDED' = 1, 'DROPPED' = 2, 'ERROR' = 3, 'AUDIT' = 4, 'REDIRECTED' = 5, 'TRACED' = 6, 'TRANSLATED' = 7),
    traffic_direction Enum8('TRAFFIC_DIRECTION_UNKNOWN' = 0, 'INGRESS' = 1, 'EGRESS' = 2),
    flows UInt64 CODEC(T64, ZSTD(1)),
    bytes UInt64 CODEC(T64, ZSTD(1)),
    packets UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/flowscope/edges_1m_local', '{replica}', (flows, bytes, packets))
ORDER BY (time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction)
PARTITION BY toStartOfInterval(time, toIntervalSecond(108000))
TTL toDateTime(time) + toIntervalSecond(2592000)
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS flowscope.edges_1m ON CLUSTER flows_cluster AS flowscope.edges_1m_local
ENGINE = Distributed(flows_cluster, flowscope, edges_1m_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS flowscope.edges_1m_local_view ON CLUSTER flows_cluster
TO flowscope.edges_1m_local
AS SELECT toStartOfInterval(time, toIntervalSecond(60)) AS time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction, count() AS flows, sum(bytes_forward + bytes_reply) AS bytes, sum(packets_forward + packets_reply) AS packets
FROM flowscope.flows_local
GROUP BY time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction;

INSERT INTO flowscope.edges_1m
SELECT toStartOfInterval(time, toIntervalSecond(60)) AS time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction, count() AS flows, sum(bytes_forward + bytes_reply) AS bytes, sum(packets_forward + packets_reply) AS packets
FROM flowscope.flows
GROUP BY time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction;

CREATE TABLE IF NOT EXISTS flowscope.edges_1h_local ON CLUSTER flows_cluster
(
    time DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    node_name LowCardinality(String),
    source_namespace LowCardinality(String),
    source_workload_names Array(LowCardinality(String)),
    source_workload_kinds Array(LowCardinality(String)),
    source_identity UInt32 CODEC(ZSTD(1)),
    destination_namespace LowCardinality(String),
    destination_workload_names Array(LowCardinality(String)),
    destination_workload_kinds Array(LowCardinality(String)),
    destination_identity UInt32 CODEC(ZSTD(1)),
    destination_port UInt32 CODEC(T64, ZSTD(1)),
    l4_protocol Enum8('' = 0, 'TCP' = 1, 'UDP' = 2, 'ICMPv4' = 3, 'ICMPv6' = 4, 'SCTP' = 5, 'VRRP' = 6, 'IGMP' = 7),
    l7_protocol Enum8('' = 0, 'dns' = 100, 'http' = 101, 'kafka' = 102),
    verdict Enum8('VERDICT_UNKNOWN' = 0, 'FORWARDED' = 1, 'DROPPED' = 2, 'ERROR' = 3, 'AUDIT' = 4, 'REDIRECTED' = 5, 'TRACED' = 6, 'TRANSLATED' = 7),
    traffic_direction Enum8('TRAFFIC_DIRECTION_UNKNOWN' = 0, 'INGRESS' = 1, 'EGRESS' = 2),
    flows UInt64 CODEC(T64, ZSTD(1)),
    bytes UInt64 CODEC(T64, ZSTD(1)),
    packets UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/flowscope/edges_1h_local', '{replica}', (flows, bytes, packets))
ORDER BY (time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction)
PARTITION BY toStartOfInterval(time, toIntervalSecond(1314000))
TTL toDateTime(time) + toIntervalSecond(31536000)
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS flowscope.edges_1h ON CLUSTER flows_cluster AS flowscope.edges_1h_local
ENGINE = Distributed(flows_cluster, flowscope, edges_1h_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS flowscope.edges_1h_local_view ON CLUSTER flows_cluster
TO flowscope.edges_1h_local
AS SELECT toStartOfInterval(time, toIntervalSecond(3600)) AS time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction, count() AS flows, sum(bytes_forward + bytes_reply) AS bytes, sum(packets_forward + packets_reply) AS packets
FROM flowscope.flows_local
GROUP BY time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction;

INSERT INTO flowscope.edges_1h
SELECT toStartOfInterval(time, toIntervalSecond(3600)) AS time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction, count() AS flows, sum(bytes_forward + bytes_reply) AS bytes, sum(packets_forward + packets_reply) AS packets
FROM flowscope.flows
GROUP BY time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction;

CREATE TABLE IF NOT EXISTS flowscope.flows_received ON CLUSTER flows_cluster
(
    received_flow Array(Tuple(time Nullable(Tuple(seconds Int64, nanos Int32)), uuid String, verdict Int32, auth_type Int32, IP Nullable(Tuple(source String, source_xlated String, destination String, ipVersion Int32, encrypted Bool)), l4 Nullable(Tuple(TCP Nullable(Tuple(source_port UInt32, destination_port UInt32, flags Nullable(Tuple(FIN Bool, SYN Bool, RST Bool, PSH Bool, ACK Bool, URG Bool, ECE Bool, CWR Bool, NS Bool)))), UDP Nullable(Tuple(source_port UInt32, destination_port UInt32)), ICMPv4 Nullable(Tuple(type UInt32, code UInt32)), ICMPv6 Nullable(Tuple(type UInt32, code UInt32)), SCTP Nullable(Tuple(source_port UInt32, destination_port UInt32)), VRRP Nullable(Tuple(type UInt32, vrid UInt32, priority UInt32)), IGMP Nullable(Tuple(type UInt32, group_address String)))), source Nullable(Tuple(ID UInt32, identity UInt32, cluster_name String, namespace String, labels Array(String), pod_name String, workloads Array(Tuple(name String, kind String)), process Nullable(Tuple(pid UInt32, command String)))), destination Nullable(Tuple(ID UInt32, identity UInt32, cluster_name String, namespace String, labels Array(String), pod_name String, workloads Array(Tuple(name String, kind String)), process Nullable(Tuple(pid UInt32, command String)))), Type Int32, node_name String, node_labels Array(String), source_names Array(String), destination_names Array(String), l7 Nullable(Tuple(type Int32, latency_ns UInt64, dns Nullable(Tuple(query String, ips Array(String), ttl UInt32, cnames Array(String), observation_source String, rcode UInt32, qtypes Array(String), rrtypes Array(String))), http Nullable(Tuple(code UInt32, method String, url String, protocol String, headers Array(Tuple(key String, value String)))), kafka Nullable(Tuple(error_code Int32, api_version Int32, api_key String, correlation_id Int32, topic String)))), event_type Nullable(Tuple(type Int32, sub_type Int32)), source_service Nullable(Tuple(name String, namespace String)), destination_service Nullable(Tuple(name String, namespace String)), traffic_direction Int32, policy_match_type UInt32, trace_observation_point Int32, trace_reason Int32, ip_trace_id Nullable(Tuple(trace_id UInt64, ip_option_type UInt32)), drop_reason_desc Int32, is_reply Nullable(Tuple(value Bool)), interface Nullable(Tuple(index UInt32, name String)), trace_context Nullable(Tuple(parent Nullable(Tuple(trace_id String)))), egress_allowed_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), ingress_allowed_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), egress_denied_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), ingress_denied_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), node_sequence UInt64, counters Nullable(Tuple(packets_forward UInt64, bytes_forward UInt64, packets_reply UInt64, bytes_reply UInt64)), retransmits UInt32, kernel_drop_reason String)),
    kept_flow Array(Tuple(drop_reason Nullable(UInt32), ethernet Nullable(String), IP Nullable(String), l4 Nullable(String), l7 Nullable(String), reply Nullable(Bool), debug_capture_point Nullable(Int32), proxy_port Nullable(UInt32), sock_xlate_point Nullable(Int32), socket_cookie Nullable(UInt64), cgroup_id Nullable(UInt64), file Nullable(String), tunnel Nullable(String), emitter Nullable(String), egress_allowed_by Array(String), ingress_allowed_by Array(String), egress_denied_by Array(String), ingress_denied_by Array(String), policy_log Array(String), aggregate Nullable(String), Summary Nullable(String), extensions Nullable(String)))
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS flowscope.flows_received_view ON CLUSTER flows_cluster
TO flowscope.flows
AS SELECT
    fromUnixTimestamp64Nano(toInt64(tupleElement(assumeNotNull(received_time), 'seconds')) * 1000000000 + tupleElement(assumeNotNull(received_time), 'nanos'), 'UTC') AS time,
    received_node_name AS node_name,
    received_node_sequence AS node_sequence,
    received_node_labels AS node_labels,
    if(received_node_sequence != 0 AND received_uuid = concat(substring(lower(hex(MD5(received_node_name))), 1, 8), '-', substring(lower(hex(MD5(received_node_name))), 9, 4), '-8', substring(lower(hex(MD5(received_node_name))), 14, 3), '-', substring(lower(hex(bitOr(bitAnd(received_node_sequence, 0x3FFFFFFFFFFFFFFF), 0x8000000000000000))), 1, 4), '-', substring(lower(hex(bitOr(bitAnd(received_node_sequence, 0x3FFFFFFFFFFFFFFF), 0x8000000000000000))), 5, 12)), '', received_uuid) AS stored_uuid,
    if(received_verdict IN (0, 1, 2, 3, 4, 5, 6, 7), received_verdict, 0) AS verdict,
    if(received_drop_reason_desc IN (0, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205), received_drop_reason_desc, 0) AS drop_reason_desc,
    received_kernel_drop_reason AS kernel_drop_reason,
    if(received_auth_type IN (0, 1, 2), received_auth_type, 0) AS auth_type,
    if(received_Type IN (0, 1, 2, 3), received_Type, 0) AS flow_type,
    tupleElement(assumeNotNull(received_event_type), 'type') AS event_type,
    tupleElement(assumeNotNull(received_event_type), 'sub_type') AS event_sub_type,
    if(received_trace_observation_point IN (0, 1, 2, 3, 4, 101, 5, 6, 7, 8, 9, 10, 11, 12, 13), received_trace_observation_point, 0) AS trace_observation_point,
    if(received_trace_reason IN (0, 1, 2, 3, 4, 5, 6, 7, 8), received_trace_reason, 0) AS trace_reason,
    received_policy_match_type AS policy_match_type,
    if(received_traffic_direction IN (0, 1, 2), received_traffic_direction, 0) AS traffic_direction,
    if(received_is_reply IS NULL, NULL, tupleElement(assumeNotNull(received_is_reply), 'value')) AS is_reply,
    if(tupleElement(assumeNotNull(received_IP), 'ipVersion') IN (0, 1, 2), tupleElement(assumeNotNull(received_IP), 'ipVersion'), 0) AS ip_version,
    toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source')) AS source_ip,
    toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source_xlated')) AS source_ip_xlated,
    toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'destination')) AS destination_ip,
    tupleElement(assumeNotNull(received_IP), 'encrypted') AS encrypted,
    multiIf(tupleElement(assumeNotNull(received_l4), 'TCP') IS NOT NULL, 1, tupleElement(assumeNotNull(received_l4), 'UDP') IS NOT NULL, 2, tupleElement(assumeNotNull(received_l4), 'ICMPv4') IS NOT NULL, 3, tupleElement(assumeNotNull(received_l4), 'ICMPv6') IS NOT NULL, 4, tupleElement(assumeNotNull(received_l4), 'SCTP') IS NOT NULL, 5, tupleElement(assumeNotNull(received_l4), 'VRRP') IS NOT NULL, 6, tupleElement(assumeNotNull(received_l4), 'IGMP') IS NOT NULL, 7, 0) AS l4_protocol,
    multiIf(tupleElement(assumeNotNull(received_l4), 'TCP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'source_port'), tupleElement(assumeNotNull(received_l4), 'UDP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'UDP')), 'source_port'), tupleElement(assumeNotNull(received_l4), 'SCTP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'SCTP')), 'source_port'), 0) AS source_port,
    multiIf(tupleElement(assumeNotNull(received_l4), 'TCP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'destination_port'), tupleElement(assumeNotNull(received_l4), 'UDP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'UDP')), 'destination_port'), tupleElement(assumeNotNull(received_l4), 'SCTP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'SCTP')), 'destination_port'), 0) AS destination_port,
    toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'FIN')) * 1 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'SYN')) * 2 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'RST')) * 4 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'PSH')) * 8 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'ACK')) * 16 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'URG')) * 32 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'ECE')) * 64 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'CWR')) * 128 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'NS')) * 256 AS tcp_flags,
    tupleElement(assumeNotNull(received_interface), 'index') AS interface_index,
    tupleElement(assumeNotNull(received_interface), 'name') AS interface_name,
    tupleElement(assumeNotNull(received_ip_trace_id), 'trace_id') AS ip_trace_id,
    tupleElement(assumeNotNull(received_ip_trace_id), 'ip_option_type') AS ip_trace_option_type,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_trace_context), 'parent')), 'trace_id') AS trace_id,
    tupleElement(assumeNotNull(received_source), 'ID') AS source_id,
    tupleElement(assumeNotNull(received_source), 'identity') AS source_identity,
    tupleElement(assumeNotNull(received_source), 'cluster_name') AS source_cluster_name,
    tupleElement(assumeNotNull(received_source), 'namespace') AS source_namespace,
    tupleElement(assumeNotNull(received_source), 'pod_name') AS source_pod_name,
    tupleElement(assumeNotNull(received_source), 'labels') AS source_labels,
    arrayMap(w -> tupleElement(w, 'name'), tupleElement(assumeNotNull(received_source), 'workloads')) AS source_workload_names,
    arrayMap(w -> tupleElement(w, 'kind'), tupleElement(assumeNotNull(received_source), 'workloads')) AS source_workload_kinds,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_source), 'process')), 'pid') AS source_pid,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_source), 'process')), 'command') AS source_command,
    received_source_names AS source_names,
    tupleElement(assumeNotNull(received_source_service), 'name') AS source_service_name,
    tupleElement(assumeNotNull(received_source_service), 'namespace') AS source_service_namespace,
    tupleElement(assumeNotNull(received_destination), 'ID') AS destination_id,
    tupleElement(assumeNotNull(received_destination), 'identity') AS destination_identity,
    tupleElement(assumeNotNull(received_destination), 'cluster_name') AS destination_cluster_name,
    tupleElement(assumeNotNull(received_destination), 'namespace') AS destination_namespace,
    tupleElement(assumeNotNull(received_destination), 'pod_name') AS destination_pod_name,
    tupleElement(assumeNotNull(received_destination), 'labels') AS destination_labels,
    arrayMap(w -> tupleElement(w, 'name'), tupleElement(assumeNotNull(received_destination), 'workloads')) AS destination_workload_names,
    arrayMap(w -> tupleElement(w, 'kind'), tupleElement(assumeNotNull(received_destination), 'workloads')) AS destination_workload_kinds,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_destination), 'process')), 'pid') AS destination_pid,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_destination), 'process')), 'command') AS destination_command,
    received_destination_names AS destination_names,
    tupleElement(assumeNotNull(received_destination_service), 'name') AS destination_service_name,
    tupleElement(assumeNotNull(received_destination_service), 'namespace') AS destination_service_namespace,
    multiIf(tupleElement(assumeNotNull(received_l7), 'dns') IS NOT NULL, 100, tupleElement(assumeNotNull(received_l7), 'http') IS NOT NULL, 101, tupleElement(assumeNotNull(received_l7), 'kafka') IS NOT NULL, 102, 0) AS l7_protocol,
    if(tupleElement(assumeNotNull(received_l7), 'type') IN (0, 1, 2, 3), tupleElement(assumeNotNull(received_l7), 'type'), 0) AS l7_type,
    tupleElement(assumeNotNull(received_l7), 'latency_ns') AS l7_latency_ns,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'dns')), 'query') AS dns_query,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'dns')), 'rcode') AS dns_rcode,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'dns')), 'qtypes') AS dns_qtypes,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'code') AS http_code,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'method') AS http_method,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url') AS http_url,
    multiIf(match(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '[\\x00-\\x1f\\x7f]') OR (extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[1] = '' AND NOT startsWith(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '/')), NULL, match(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[2], '[\\[\\]]') AND NOT match(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[2], '^(?:[^@\\[\\]]*@)?\\[[0-9A-Fa-f:.]+\\](?::[0-9]*)?$'), NULL, match(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[3], '%(?:[^0-9A-Fa-f]|[0-9A-Fa-f](?:[^0-9A-Fa-f]|$)|$)') OR NOT isValidUTF8(decodeURLComponent(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[3])), NULL, decodeURLComponent(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[3])) AS http_path,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'protocol') AS http_protocol,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'headers') AS http_headers,
    arrayConcat(arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_egress_allowed_by), arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_ingress_allowed_by), arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_egress_denied_by), arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_ingress_denied_by)) AS policy_names,
    tupleElement(assumeNotNull(received_counters), 'packets_forward') AS packets_forward,
    tupleElement(assumeNotNull(received_counters), 'bytes_forward') AS bytes_forward,
    tupleElement(assumeNotNull(received_counters), 'packets_reply') AS packets_reply,
    tupleElement(assumeNotNull(received_counters), 'bytes_reply') AS bytes_reply,
    received_retransmits AS retransmits,
    toUInt16(if(received_time IS NULL, 0, 1) + if(received_event_type IS NULL, 0, 2) + if(received_interface IS NULL, 0, 4) + if(received_ip_trace_id IS NULL, 0, 8) + if(received_trace_context IS NULL, 0, 16) + if(tupleElement(assumeNotNull(received_trace_context), 'parent') IS NULL, 0, 32) + if(received_source IS NULL, 0, 64) + if(tupleElement(assumeNotNull(received_source), 'process') IS NULL, 0, 128) + if(received_destination IS NULL, 0, 256) + if(tupleElement(assumeNotNull(received_destination), 'process') IS NULL, 0, 512) + if(received_source_service IS NULL, 0, 1024) + if(received_destination_service IS NULL, 0, 2048) + if(received_counters IS NULL, 0, 4096) + if(received_IP IS NULL, 0, 8192) + if(received_l4 IS NULL, 0, 16384) + if(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags') IS NULL, 0, 32768)) AS present,
    concat(substring(kept_written, 2 + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128) + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 2, 1)) >= 128) + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 2, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 3, 1)) >= 128) + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 2, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 3, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 4, 1)) >= 128)), if(received_verdict IN (0, 1, 2, 3, 4, 5, 6, 7), '', concat('\x10', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_verdict), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_verdict), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_verdict), 7 * i) != 0, range(10)))))), if(received_auth_type IN (0, 1, 2), '', concat('\x98\x02', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_auth_type), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_auth_type), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_auth_type), 7 * i) != 0, range(10)))))), if(received_Type IN (0, 1, 2, 3), '', concat('\x50', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_Type), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_Type), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_Type), 7 * i) != 0, range(10)))))), if(received_traffic_direction IN (0, 1, 2), '', concat('\xb0\x01', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_traffic_direction), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_traffic_direction), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_traffic_direction), 7 * i) != 0, range(10)))))), if(received_trace_observation_point IN (0, 1, 2, 3, 4, 101, 5, 6, 7, 8, 9, 10, 11, 12, 13), '', concat('\xc0\x01', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_trace_observation_point), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_trace_observation_point), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_trace_observation_point), 7 * i) != 0, range(10)))))), if(received_trace_reason IN (0, 1, 2, 3, 4, 5, 6, 7, 8), '', concat('\xa0\x02', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_trace_reason), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_trace_reason), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_trace_reason), 7 * i) != 0, range(10)))))), if(received_drop_reason_desc IN (0, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205), '', concat('\xc8\x01', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_drop_reason_desc), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_drop_reason_desc), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_drop_reason_desc), 7 * i) != 0, range(10))))))) AS flow
FROM (
    SELECT
        tupleElement(flow, 'time') AS received_time,
        tupleElement(flow, 'uuid') AS received_uuid,
        tupleElement(flow, 'verdict') AS received_verdict,
        tupleElement(flow, 'auth_type') AS received_auth_type,
        tupleElement(flow, 'IP') AS received_IP,
        tupleElement(flow, 'l4') AS received_l4,
        tupleElement(flow, 'source') AS received_source,
        tupleElement(flow, 'destination') AS received_destination,
        tupleElement(flow, 'Type') AS received_Type,
        tupleElement(flow, 'node_name') AS received_node_name,
        tupleElement(flow, 'node_labels') AS received_node_labels,
        tupleElement(flow, 'source_names') AS received_source_names,
        tupleElement(flow, 'destination_names') AS received_destination_names,
        tupleElement(flow, 'l7') AS received_l7,
        tupleElement(flow, 'event_type') AS received_event_type,
        tupleElement(flow, 'source_service') AS received_source_service,
        tupleElement(flow, 'destination_service') AS received_destination_service,
        tupleElement(flow, 'traffic_direction') AS received_traffic_direction,
        tupleElement(flow, 'policy_match_type') AS received_policy_match_type,
        tupleElement(flow, 'trace_observation_point') AS received_trace_observation_point,
        tupleElement(flow, 'trace_reason') AS received_trace_reason,
        tupleElement(flow, 'ip_trace_id') AS received_ip_trace_id,
        tupleElement(flow, 'drop_reason_desc') AS received_drop_reason_desc,
        tupleElement(flow, 'is_reply') AS received_is_reply,
        tupleElement(flow, 'interface') AS received_interface,
        tupleElement(flow, 'trace_context') AS received_trace_context,
        tupleElement(flow, 'egress_allowed_by') AS received_egress_allowed_by,
        tupleElement(flow, 'ingress_allowed_by') AS received_ingress_allowed_by,
        tupleElement(flow, 'egress_denied_by') AS received_egress_denied_by,
        tupleElement(flow, 'ingress_denied_by') AS received_ingress_denied_by,
        tupleElement(flow, 'node_sequence') AS received_node_sequence,
        tupleElement(flow, 'counters') AS received_counters,
        tupleElement(flow, 'retransmits') AS received_retransmits,
        tupleElement(flow, 'kernel_drop_reason') AS received_kernel_drop_reason,
        kept AS kept,
        formatRow('Protobuf', tupleElement(kept, 'drop_reason') AS drop_reason, tupleElement(kept, 'ethernet') AS ethernet, if(tupleElement(assumeNotNull(received_IP), 'ipVersion') IN (0, 1, 2) AND (tupleElement(assumeNotNull(received_IP), 'source') = '' OR (ifNull(tupleElement(assumeNotNull(received_IP), 'source') = replaceRegexpOne(IPv6NumToString(toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source'))), '^::ffff:([0-9.]+)$', '\\1'), false) AND (position(tupleElement(assumeNotNull(received_IP), 'source'), '.') = 0 OR isIPv4String(tupleElement(assumeNotNull(received_IP), 'source'))))) AND (tupleElement(assumeNotNull(received_IP), 'destination') = '' OR (ifNull(tupleElement(assumeNotNull(received_IP), 'destination') = replaceRegexpOne(IPv6NumToString(toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'destination'))), '^::ffff:([0-9.]+)$', '\\1'), false) AND (position(tupleElement(assumeNotNull(received_IP), 'destination'), '.') = 0 OR isIPv4String(tupleElement(assumeNotNull(received_IP), 'destination'))))) AND (tupleElement(assumeNotNull(received_IP), 'source_xlated') = '' OR (ifNull(tupleElement(assumeNotNull(received_IP), 'source_xlated') = replaceRegexpOne(IPv6NumToString(toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source_xlated'))), '^::ffff:([0-9.]+)$', '\\1'), false) AND (position(tupleElement(assumeNotNull(received_IP), 'source_xlated'), '.') = 0 OR isIPv4String(tupleElement(assumeNotNull(received_IP), 'source_xlated'))))), NULL, tupleElement(kept, 'IP')) AS IP, if((length(ifNull(tupleElement(kept, 'l4'), '')) = 0 OR (reinterpretAsUInt8(substring(ifNull(tupleElement(kept, 'l4'), ''), 1, 1)) IN (10, 18, 42) AND length(ifNull(tupleElement(kept, 'l4'), '')) = 2 + reinterpretAsUInt8(substring(ifNull(tupleElement(kept, 'l4'), ''), 2, 1)))), NULL, tupleElement(kept, 'l4')) AS l4, tupleElement(kept, 'l7') AS l7, tupleElement(kept, 'reply') AS reply, tupleElement(kept, 'debug_capture_point') AS debug_capture_point, tupleElement(kept, 'proxy_port') AS proxy_port, tupleElement(kept, 'sock_xlate_point') AS sock_xlate_point, tupleElement(kept, 'socket_cookie') AS socket_cookie, tupleElement(kept, 'cgroup_id') AS cgroup_id, tupleElement(kept, 'file') AS file, tupleElement(kept, 'tunnel') AS tunnel, tupleElement(kept, 'emitter') AS emitter, tupleElement(kept, 'egress_allowed_by') AS egress_allowed_by, tupleElement(kept, 'ingress_allowed_by') AS ingress_allowed_by, tupleElement(kept, 'egress_denied_by') AS egress_denied_by, tupleElement(kept, 'ingress_denied_by') AS ingress_denied_by, tupleElement(kept, 'policy_log') AS policy_log, tupleElement(kept, 'aggregate') AS aggregate, tupleElement(kept, 'Summary') AS Summary, tupleElement(kept, 'extensions') AS extensions) AS kept_written
    FROM flowscope.flows_received
    ARRAY JOIN received_flow AS flow, kept_flow AS kept
);

DROP VIEW IF EXISTS flowscope.edges_1h_local_view ON CLUSTER flows_cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS flowscope.edges_1h_local_view ON CLUSTER flows_cluster
TO flowscope.edges_1h_local
AS SELECT toStartOfInterval(time, toIntervalSecond(3600)) AS time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction, sum(flows) AS flows, sum(bytes) AS bytes, sum(packets) AS packets
FROM flowscope.edges_1m_local
GROUP BY time, node_name, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, l7_protocol, verdict, traffic_direction;

CREATE TABLE IF NOT EXISTS flowscope.identities_local ON CLUSTER flows_cluster
(
    label_key String,
    identity UInt32,
    allocated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/flowscope/identities_local', '{replica}')
ORDER BY identity;

CREATE TABLE IF NOT EXISTS flowscope.identities ON CLUSTER flows_cluster AS flowscope.identities_local
ENGINE = Distributed(flows_cluster, flowscope, identities_local, rand());

CREATE TABLE IF NOT EXISTS flowscope.map_edges_1m_local ON CLUSTER flows_cluster
(
    time DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    source_namespace LowCardinality(String),
    source_workload_names Array(LowCardinality(String)),
    source_workload_kinds Array(LowCardinality(String)),
    source_identity UInt32 CODEC(ZSTD(1)),
    destination_namespace LowCardinality(String),
    destination_workload_names Array(LowCardinality(String)),
    destination_workload_kinds Array(LowCardinality(String)),
    destination_identity UInt32 CODEC(ZSTD(1)),
    destination_port UInt32 CODEC(T64, ZSTD(1)),
    l4_protocol Enum8('' = 0, 'TCP' = 1, 'UDP' = 2, 'ICMPv4' = 3, 'ICMPv6' = 4, 'SCTP' = 5, 'VRRP' = 6, 'IGMP' = 7),
    verdict Enum8('VERDICT_UNKNOWN' = 0, 'FORWARDED' = 1, 'DROPPED' = 2, 'ERROR' = 3, 'AUDIT' = 4, 'REDIRECTED' = 5, 'TRACED' = 6, 'TRANSLATED' = 7),
    is_reply Nullable(Bool),
    flows UInt64 CODEC(T64, ZSTD(1)),
    bytes UInt64 CODEC(T64, ZSTD(1)),
    packets UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/flowscope/map_edges_1m_local', '{replica}', (flows, bytes, packets))
ORDER BY (time, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, verdict, is_reply)
PARTITION BY toStartOfInterval(time, toIntervalSecond(108000))
TTL toDateTime(time) + toIntervalSecond(2592000)
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000, allow_nullable_key = 1;

CREATE TABLE IF NOT EXISTS flowscope.map_edges_1m ON CLUSTER flows_cluster AS flowscope.map_edges_1m_local
ENGINE = Distributed(flows_cluster, flowscope, map_edges_1m_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS flowscope.map_edges_1m_local_view ON CLUSTER flows_cluster
TO flowscope.map_edges_1m_local
AS SELECT toStartOfInterval(time, toIntervalSecond(60)) AS time, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, verdict, is_reply, count() AS flows, sum(bytes_forward + bytes_reply) AS bytes, sum(packets_forward + packets_reply) AS packets
FROM flowscope.flows_local
GROUP BY time, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, verdict, is_reply;

INSERT INTO flowscope.map_edges_1m
SELECT toStartOfInterval(time, toIntervalSecond(60)) AS time, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, verdict, is_reply, count() AS flows, sum(bytes_forward + bytes_reply) AS bytes, sum(packets_forward + packets_reply) AS packets
FROM flowscope.flows
GROUP BY time, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, verdict, is_reply;

INSERT INTO flowscope.map_edges_1m
SELECT toStartOfInterval(time, toIntervalSecond(60)) AS time, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, verdict, is_reply, sum(flows) AS flows, sum(bytes) AS bytes, sum(packets) AS packets
FROM (SELECT *, CAST(NULL, 'Nullable(Bool)') AS is_reply FROM flowscope.edges_1m WHERE time < ifNull((SELECT toStartOfMinute(minOrNull(time)) FROM flowscope.flows), now()))
GROUP BY time, source_namespace, source_workload_names, source_workload_kinds, source_identity, destination_namespace, destination_workload_names, destination_workload_kinds, destination_identity, destination_port, l4_protocol, verdict, is_reply;

DROP VIEW IF EXISTS flowscope.flows_received_view ON CLUSTER flows_cluster;

DROP TABLE IF EXISTS flowscope.flows_received ON CLUSTER flows_cluster;

CREATE TABLE IF NOT EXISTS flowscope.flows_received ON CLUSTER flows_cluster
(
    received_flow Array(Tuple(time Nullable(Tuple(seconds Int64, nanos Int32)), uuid String, verdict Int32, auth_type Int32, IP Nullable(Tuple(source String, source_xlated String, destination String, ipVersion Int32, encrypted Bool)), l4 Nullable(Tuple(TCP Nullable(Tuple(source_port UInt32, destination_port UInt32, flags Nullable(Tuple(FIN Bool, SYN Bool, RST Bool, PSH Bool, ACK Bool, URG Bool, ECE Bool, CWR Bool, NS Bool)))), UDP Nullable(Tuple(source_port UInt32, destination_port UInt32)), ICMPv4 Nullable(Tuple(type UInt32, code UInt32)), ICMPv6 Nullable(Tuple(type UInt32, code UInt32)), SCTP Nullable(Tuple(source_port UInt32, destination_port UInt32)), VRRP Nullable(Tuple(type UInt32, vrid UInt32, priority UInt32)), IGMP Nullable(Tuple(type UInt32, group_address String)))), source Nullable(Tuple(ID UInt32, identity UInt32, cluster_name String, namespace String, labels Array(String), pod_name String, workloads Array(Tuple(name String, kind String)), process Nullable(Tuple(pid UInt32, command String)))), destination Nullable(Tuple(ID UInt32, identity UInt32, cluster_name String, namespace String, labels Array(String), pod_name String, workloads Array(Tuple(name String, kind String)), process Nullable(Tuple(pid UInt32, command String)))), Type Int32, node_name String, node_labels Array(String), source_names Array(String), destination_names Array(String), l7 Nullable(Tuple(type Int32, latency_ns UInt64, dns Nullable(Tuple(query String, ips Array(String), ttl UInt32, cnames Array(String), observation_source String, rcode UInt32, qtypes Array(String), rrtypes Array(String))), http Nullable(Tuple(code UInt32, method String, url String, protocol String, headers Array(Tuple(key String, value String)))), kafka Nullable(Tuple(error_code Int32, api_version Int32, api_key String, correlation_id Int32, topic String)))), event_type Nullable(Tuple(type Int32, sub_type Int32)), source_service Nullable(Tuple(name String, namespace String)), destination_service Nullable(Tuple(name String, namespace String)), traffic_direction Int32, policy_match_type UInt32, trace_observation_point Int32, trace_reason Int32, ip_trace_id Nullable(Tuple(trace_id UInt64, ip_option_type UInt32)), drop_reason_desc Int32, is_reply Nullable(Tuple(value Bool)), interface Nullable(Tuple(index UInt32, name String)), trace_context Nullable(Tuple(parent Nullable(Tuple(trace_id String)))), egress_allowed_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), ingress_allowed_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), egress_denied_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), ingress_denied_by Array(Tuple(name String, namespace String, labels Array(String), revision UInt64, kind String)), node_sequence UInt64, counters Nullable(Tuple(packets_forward UInt64, bytes_forward UInt64, packets_reply UInt64, bytes_reply UInt64)), retransmits UInt32, kernel_drop_reason String)),
    kept_flow Array(Tuple(drop_reason Nullable(UInt32), ethernet Nullable(String), IP Nullable(String), l4 Nullable(String), l7 Nullable(String), reply Nullable(Bool), debug_capture_point Nullable(Int32), proxy_port Nullable(UInt32), sock_xlate_point Nullable(Int32), socket_cookie Nullable(UInt64), cgroup_id Nullable(UInt64), file Nullable(String), tunnel Nullable(String), emitter Nullable(String), egress_allowed_by Array(String), ingress_allowed_by Array(String), egress_denied_by Array(String), ingress_denied_by Array(String), policy_log Array(String), aggregate Nullable(String), Summary Nullable(String), extensions Nullable(String)))
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS flowscope.flows_received_view ON CLUSTER flows_cluster
TO flowscope.flows
AS SELECT
    fromUnixTimestamp64Nano(toInt64(tupleElement(assumeNotNull(received_time), 'seconds')) * 1000000000 + tupleElement(assumeNotNull(received_time), 'nanos'), 'UTC') AS time,
    received_node_name AS node_name,
    received_node_sequence AS node_sequence,
    received_node_labels AS node_labels,
    if(received_node_sequence != 0 AND received_uuid = concat(substring(lower(hex(MD5(received_node_name))), 1, 8), '-', substring(lower(hex(MD5(received_node_name))), 9, 4), '-8', substring(lower(hex(MD5(received_node_name))), 14, 3), '-', substring(lower(hex(bitOr(bitAnd(received_node_sequence, 0x3FFFFFFFFFFFFFFF), 0x8000000000000000))), 1, 4), '-', substring(lower(hex(bitOr(bitAnd(received_node_sequence, 0x3FFFFFFFFFFFFFFF), 0x8000000000000000))), 5, 12)), '', received_uuid) AS stored_uuid,
    if(received_verdict IN (0, 1, 2, 3, 4, 5, 6, 7), received_verdict, 0) AS verdict,
    if(received_drop_reason_desc IN (0, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205), received_drop_reason_desc, 0) AS drop_reason_desc,
    received_kernel_drop_reason AS kernel_drop_reason,
    if(received_auth_type IN (0, 1, 2), received_auth_type, 0) AS auth_type,
    if(received_Type IN (0, 1, 2, 3), received_Type, 0) AS flow_type,
    tupleElement(assumeNotNull(received_event_type), 'type') AS event_type,
    tupleElement(assumeNotNull(received_event_type), 'sub_type') AS event_sub_type,
    if(received_trace_observation_point IN (0, 1, 2, 3, 4, 101, 5, 6, 7, 8, 9, 10, 11, 12, 13), received_trace_observation_point, 0) AS trace_observation_point,
    if(received_trace_reason IN (0, 1, 2, 3, 4, 5, 6, 7, 8), received_trace_reason, 0) AS trace_reason,
    received_policy_match_type AS policy_match_type,
    if(received_traffic_direction IN (0, 1, 2), received_traffic_direction, 0) AS traffic_direction,
    if(received_is_reply IS NULL, NULL, tupleElement(assumeNotNull(received_is_reply), 'value')) AS is_reply,
    if(tupleElement(assumeNotNull(received_IP), 'ipVersion') IN (0, 1, 2), tupleElement(assumeNotNull(received_IP), 'ipVersion'), 0) AS ip_version,
    toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source')) AS source_ip,
    toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source_xlated')) AS source_ip_xlated,
    toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'destination')) AS destination_ip,
    tupleElement(assumeNotNull(received_IP), 'encrypted') AS encrypted,
    multiIf(tupleElement(assumeNotNull(received_l4), 'TCP') IS NOT NULL, 1, tupleElement(assumeNotNull(received_l4), 'UDP') IS NOT NULL, 2, tupleElement(assumeNotNull(received_l4), 'ICMPv4') IS NOT NULL, 3, tupleElement(assumeNotNull(received_l4), 'ICMPv6') IS NOT NULL, 4, tupleElement(assumeNotNull(received_l4), 'SCTP') IS NOT NULL, 5, tupleElement(assumeNotNull(received_l4), 'VRRP') IS NOT NULL, 6, tupleElement(assumeNotNull(received_l4), 'IGMP') IS NOT NULL, 7, 0) AS l4_protocol,
    multiIf(tupleElement(assumeNotNull(received_l4), 'TCP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'source_port'), tupleElement(assumeNotNull(received_l4), 'UDP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'UDP')), 'source_port'), tupleElement(assumeNotNull(received_l4), 'SCTP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'SCTP')), 'source_port'), 0) AS source_port,
    multiIf(tupleElement(assumeNotNull(received_l4), 'TCP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'destination_port'), tupleElement(assumeNotNull(received_l4), 'UDP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'UDP')), 'destination_port'), tupleElement(assumeNotNull(received_l4), 'SCTP') IS NOT NULL, tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'SCTP')), 'destination_port'), 0) AS destination_port,
    toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'FIN')) * 1 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'SYN')) * 2 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'RST')) * 4 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'PSH')) * 8 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'ACK')) * 16 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'URG')) * 32 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'ECE')) * 64 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'CWR')) * 128 + toUInt16(tupleElement(assumeNotNull(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags')), 'NS')) * 256 AS tcp_flags,
    tupleElement(assumeNotNull(received_interface), 'index') AS interface_index,
    tupleElement(assumeNotNull(received_interface), 'name') AS interface_name,
    tupleElement(assumeNotNull(received_ip_trace_id), 'trace_id') AS ip_trace_id,
    tupleElement(assumeNotNull(received_ip_trace_id), 'ip_option_type') AS ip_trace_option_type,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_trace_context), 'parent')), 'trace_id') AS trace_id,
    tupleElement(assumeNotNull(received_source), 'ID') AS source_id,
    tupleElement(assumeNotNull(received_source), 'identity') AS source_identity,
    tupleElement(assumeNotNull(received_source), 'cluster_name') AS source_cluster_name,
    tupleElement(assumeNotNull(received_source), 'namespace') AS source_namespace,
    tupleElement(assumeNotNull(received_source), 'pod_name') AS source_pod_name,
    tupleElement(assumeNotNull(received_source), 'labels') AS source_labels,
    arrayMap(w -> tupleElement(w, 'name'), tupleElement(assumeNotNull(received_source), 'workloads')) AS source_workload_names,
    arrayMap(w -> tupleElement(w, 'kind'), tupleElement(assumeNotNull(received_source), 'workloads')) AS source_workload_kinds,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_source), 'process')), 'pid') AS source_pid,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_source), 'process')), 'command') AS source_command,
    received_source_names AS source_names,
    tupleElement(assumeNotNull(received_source_service), 'name') AS source_service_name,
    tupleElement(assumeNotNull(received_source_service), 'namespace') AS source_service_namespace,
    tupleElement(assumeNotNull(received_destination), 'ID') AS destination_id,
    tupleElement(assumeNotNull(received_destination), 'identity') AS destination_identity,
    tupleElement(assumeNotNull(received_destination), 'cluster_name') AS destination_cluster_name,
    tupleElement(assumeNotNull(received_destination), 'namespace') AS destination_namespace,
    tupleElement(assumeNotNull(received_destination), 'pod_name') AS destination_pod_name,
    tupleElement(assumeNotNull(received_destination), 'labels') AS destination_labels,
    arrayMap(w -> tupleElement(w, 'name'), tupleElement(assumeNotNull(received_destination), 'workloads')) AS destination_workload_names,
    arrayMap(w -> tupleElement(w, 'kind'), tupleElement(assumeNotNull(received_destination), 'workloads')) AS destination_workload_kinds,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_destination), 'process')), 'pid') AS destination_pid,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_destination), 'process')), 'command') AS destination_command,
    received_destination_names AS destination_names,
    tupleElement(assumeNotNull(received_destination_service), 'name') AS destination_service_name,
    tupleElement(assumeNotNull(received_destination_service), 'namespace') AS destination_service_namespace,
    multiIf(tupleElement(assumeNotNull(received_l7), 'dns') IS NOT NULL, 100, tupleElement(assumeNotNull(received_l7), 'http') IS NOT NULL, 101, tupleElement(assumeNotNull(received_l7), 'kafka') IS NOT NULL, 102, 0) AS l7_protocol,
    if(tupleElement(assumeNotNull(received_l7), 'type') IN (0, 1, 2, 3), tupleElement(assumeNotNull(received_l7), 'type'), 0) AS l7_type,
    tupleElement(assumeNotNull(received_l7), 'latency_ns') AS l7_latency_ns,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'dns')), 'query') AS dns_query,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'dns')), 'rcode') AS dns_rcode,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'dns')), 'qtypes') AS dns_qtypes,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'code') AS http_code,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'method') AS http_method,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url') AS http_url,
    multiIf(match(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '[\\x00-\\x1f\\x7f]') OR (extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[1] = '' AND NOT startsWith(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '/')), NULL, match(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[2], '[\\[\\]]') AND NOT match(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[2], '^(?:[^@\\[\\]]*@)?\\[[0-9A-Fa-f:.]+\\](?::[0-9]*)?$'), NULL, match(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[3], '%(?:[^0-9A-Fa-f]|[0-9A-Fa-f](?:[^0-9A-Fa-f]|$)|$)') OR NOT isValidUTF8(decodeURLComponent(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[3])), NULL, decodeURLComponent(extractGroups(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'url'), '^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)')[3])) AS http_path,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'protocol') AS http_protocol,
    tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l7), 'http')), 'headers') AS http_headers,
    arrayConcat(arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_egress_allowed_by), arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_ingress_allowed_by), arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_egress_denied_by), arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')), received_ingress_denied_by)) AS policy_names,
    tupleElement(assumeNotNull(received_counters), 'packets_forward') AS packets_forward,
    tupleElement(assumeNotNull(received_counters), 'bytes_forward') AS bytes_forward,
    tupleElement(assumeNotNull(received_counters), 'packets_reply') AS packets_reply,
    tupleElement(assumeNotNull(received_counters), 'bytes_reply') AS bytes_reply,
    received_retransmits AS retransmits,
    toUInt16(if(received_time IS NULL, 0, 1) + if(received_event_type IS NULL, 0, 2) + if(received_interface IS NULL, 0, 4) + if(received_ip_trace_id IS NULL, 0, 8) + if(received_trace_context IS NULL, 0, 16) + if(tupleElement(assumeNotNull(received_trace_context), 'parent') IS NULL, 0, 32) + if(received_source IS NULL, 0, 64) + if(tupleElement(assumeNotNull(received_source), 'process') IS NULL, 0, 128) + if(received_destination IS NULL, 0, 256) + if(tupleElement(assumeNotNull(received_destination), 'process') IS NULL, 0, 512) + if(received_source_service IS NULL, 0, 1024) + if(received_destination_service IS NULL, 0, 2048) + if(received_counters IS NULL, 0, 4096) + if(received_IP IS NULL, 0, 8192) + if(received_l4 IS NULL, 0, 16384) + if(tupleElement(assumeNotNull(tupleElement(assumeNotNull(received_l4), 'TCP')), 'flags') IS NULL, 0, 32768)) AS present,
    concat(substring(kept_written, 2 + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128) + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 2, 1)) >= 128) + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 2, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 3, 1)) >= 128) + (reinterpretAsUInt8(substring(kept_written, 1, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 2, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 3, 1)) >= 128 AND reinterpretAsUInt8(substring(kept_written, 4, 1)) >= 128)), if(received_verdict IN (0, 1, 2, 3, 4, 5, 6, 7), '', concat('\x10', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_verdict), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_verdict), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_verdict), 7 * i) != 0, range(10)))))), if(received_auth_type IN (0, 1, 2), '', concat('\x98\x02', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_auth_type), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_auth_type), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_auth_type), 7 * i) != 0, range(10)))))), if(received_Type IN (0, 1, 2, 3), '', concat('\x50', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_Type), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_Type), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_Type), 7 * i) != 0, range(10)))))), if(received_traffic_direction IN (0, 1, 2), '', concat('\xb0\x01', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_traffic_direction), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_traffic_direction), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_traffic_direction), 7 * i) != 0, range(10)))))), if(received_trace_observation_point IN (0, 1, 2, 3, 4, 101, 5, 6, 7, 8, 9, 10, 11, 12, 13), '', concat('\xc0\x01', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_trace_observation_point), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_trace_observation_point), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_trace_observation_point), 7 * i) != 0, range(10)))))), if(received_trace_reason IN (0, 1, 2, 3, 4, 5, 6, 7, 8), '', concat('\xa0\x02', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_trace_reason), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_trace_reason), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_trace_reason), 7 * i) != 0, range(10)))))), if(received_drop_reason_desc IN (0, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205), '', concat('\xc8\x01', arrayStringConcat(arrayMap(i -> char(bitOr(bitAnd(bitShiftRight(toUInt64(received_drop_reason_desc), 7 * i), 127), if(i < 9 AND bitShiftRight(toUInt64(received_drop_reason_desc), 7 * (i + 1)) != 0, 128, 0))), arrayFilter(i -> i = 0 OR bitShiftRight(toUInt64(received_drop_reason_desc), 7 * i) != 0, range(10))))))) AS flow
FROM (
    SELECT
        tupleElement(flow, 'time') AS received_time,
        tupleElement(flow, 'uuid') AS received_uuid,
        tupleElement(flow, 'verdict') AS received_verdict,
        tupleElement(flow, 'auth_type') AS received_auth_type,
        tupleElement(flow, 'IP') AS received_IP,
        tupleElement(flow, 'l4') AS received_l4,
        tupleElement(flow, 'source') AS received_source,
        tupleElement(flow, 'destination') AS received_destination,
        tupleElement(flow, 'Type') AS received_Type,
        tupleElement(flow, 'node_name') AS received_node_name,
        tupleElement(flow, 'node_labels') AS received_node_labels,
        tupleElement(flow, 'source_names') AS received_source_names,
        tupleElement(flow, 'destination_names') AS received_destination_names,
        tupleElement(flow, 'l7') AS received_l7,
        tupleElement(flow, 'event_type') AS received_event_type,
        tupleElement(flow, 'source_service') AS received_source_service,
        tupleElement(flow, 'destination_service') AS received_destination_service,
        tupleElement(flow, 'traffic_direction') AS received_traffic_direction,
        tupleElement(flow, 'policy_match_type') AS received_policy_match_type,
        tupleElement(flow, 'trace_observation_point') AS received_trace_observation_point,
        tupleElement(flow, 'trace_reason') AS received_trace_reason,
        tupleElement(flow, 'ip_trace_id') AS received_ip_trace_id,
        tupleElement(flow, 'drop_reason_desc') AS received_drop_reason_desc,
        tupleElement(flow, 'is_reply') AS received_is_reply,
        tupleElement(flow, 'interface') AS received_interface,
        tupleElement(flow, 'trace_context') AS received_trace_context,
        tupleElement(flow, 'egress_allowed_by') AS received_egress_allowed_by,
        tupleElement(flow, 'ingress_allowed_by') AS received_ingress_allowed_by,
        tupleElement(flow, 'egress_denied_by') AS received_egress_denied_by,
        tupleElement(flow, 'ingress_denied_by') AS received_ingress_denied_by,
        tupleElement(flow, 'node_sequence') AS received_node_sequence,
        tupleElement(flow, 'counters') AS received_counters,
        tupleElement(flow, 'retransmits') AS received_retransmits,
        tupleElement(flow, 'kernel_drop_reason') AS received_kernel_drop_reason,
        kept AS kept,
        formatRow('Protobuf', tupleElement(kept, 'drop_reason') AS drop_reason, tupleElement(kept, 'ethernet') AS ethernet, if(tupleElement(assumeNotNull(received_IP), 'ipVersion') IN (0, 1, 2) AND (tupleElement(assumeNotNull(received_IP), 'source') = '' OR (ifNull(tupleElement(assumeNotNull(received_IP), 'source') = replaceRegexpOne(IPv6NumToString(toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source'))), '^::ffff:([0-9.]+)$', '\\1'), false) AND (position(tupleElement(assumeNotNull(received_IP), 'source'), '.') = 0 OR isIPv4String(tupleElement(assumeNotNull(received_IP), 'source'))))) AND (tupleElement(assumeNotNull(received_IP), 'destination') = '' OR (ifNull(tupleElement(assumeNotNull(received_IP), 'destination') = replaceRegexpOne(IPv6NumToString(toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'destination'))), '^::ffff:([0-9.]+)$', '\\1'), false) AND (position(tupleElement(assumeNotNull(received_IP), 'destination'), '.') = 0 OR isIPv4String(tupleElement(assumeNotNull(received_IP), 'destination'))))) AND (tupleElement(assumeNotNull(received_IP), 'source_xlated') = '' OR (ifNull(tupleElement(assumeNotNull(received_IP), 'source_xlated') = replaceRegexpOne(IPv6NumToString(toIPv6OrNull(tupleElement(assumeNotNull(received_IP), 'source_xlated'))), '^::ffff:([0-9.]+)$', '\\1'), false) AND (position(tupleElement(assumeNotNull(received_IP), 'source_xlated'), '.') = 0 OR isIPv4String(tupleElement(assumeNotNull(received_IP), 'source_xlated'))))), NULL, tupleElement(kept, 'IP')) AS IP, if((length(ifNull(tupleElement(kept, 'l4'), '')) = 0 OR (reinterpretAsUInt8(substring(ifNull(tupleElement(kept, 'l4'), ''), 1, 1)) IN (10, 18, 42) AND length(ifNull(tupleElement(kept, 'l4'), '')) = 2 + reinterpretAsUInt8(substring(ifNull(tupleElement(kept, 'l4'), ''), 2, 1)))), NULL, tupleElement(kept, 'l4')) AS l4, tupleElement(kept, 'l7') AS l7, tupleElement(kept, 'reply') AS reply, tupleElement(kept, 'debug_capture_point') AS debug_capture_point, tupleElement(kept, 'proxy_port') AS proxy_port, tupleElement(kept, 'sock_xlate_point') AS sock_xlate_point, tupleElement(kept, 'socket_cookie') AS socket_cookie, tupleElement(kept, 'cgroup_id') AS cgroup_id, tupleElement(kept, 'file') AS file, tupleElement(kept, 'tunnel') AS tunnel, tupleElement(kept, 'emitter') AS emitter, tupleElement(kept, 'egress_allowed_by') AS egress_allowed_by, tupleElement(kept, 'ingress_allowed_by') AS ingress_allowed_by, tupleElement(kept, 'egress_denied_by') AS egress_denied_by, tupleElement(kept, 'ingress_denied_by') AS ingress_denied_by, tupleElement(kept, 'policy_log') AS policy_log, tupleElement(kept, 'aggregate') AS aggregate, tupleElement(kept, 'Summary') AS Summary, tupleElement(kept, 'extensions') AS extensions) AS kept_written
    FROM flowscope.flows_received
    ARRAY JOIN received_flow AS flow, kept_flow AS kept
);
