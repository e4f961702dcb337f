// Package network holds what containers' networks are made of, one
// package per capability: ipam hands out addresses, bridge makes bridges
// and veth pairs with netlink, firewall puts NAT, isolation and published
// ports in the kernel with nftables, dns is the embedded name server of
// user-defined networks. The daemon (daemon/network.go) ties them to
// containers; nothing here knows about containers or HTTP.
package network
