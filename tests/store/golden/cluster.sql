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
