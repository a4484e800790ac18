# Attributes of the velox_swift cookbook: OpenStack Swift 2.30 from
# Debian 12's packages, configured for Velox.

default['velox_swift']['swift_dir'] = '/etc/swift'
# The Debian packages create this user and run every server as it.
default['velox_swift']['user'] = 'swift'
default['velox_swift']['group'] = 'swift'

# --- secrets ---
# Read from this data bag item (encrypt it); keys: hash_path_prefix,
# hash_path_suffix (the same on every node, never changed once data is
# stored), tempauth ({"account:user": "key", ...}), keystone_password.
# Set data_bag to nil to use ['values'] instead (development only).
default['velox_swift']['secrets']['data_bag'] = 'velox_swift'
default['velox_swift']['secrets']['data_bag_item'] = 'secrets'
default['velox_swift']['secrets']['values'] = {}

# --- storage nodes (recipe velox_swift::storage) ---
st = default['velox_swift']['storage']
st['bind_ip'] = node['ipaddress']
st['account_port'] = 6202
st['container_port'] = 6201
st['object_port'] = 6200
# Disks are mounted (XFS or ext4, by you) at devices_dir/<name>; with
# mount_check a device that is not mounted is left alone instead of
# filling the root disk.
st['devices_dir'] = '/srv/node'
st['mount_check'] = true
st['devices'] = []
# 'auto' is one worker per core.
st['workers'] = 'auto'
st['replicator_concurrency'] = 4
st['rsync_max_connections'] = 8

# --- proxy nodes (recipe velox_swift::proxy) ---
px = default['velox_swift']['proxy']
px['bind_ip'] = '0.0.0.0'
px['bind_port'] = 8080
px['workers'] = 'auto'
# memcached holds tokens and listings; every proxy of a cluster should use
# the same servers.
px['memcache_servers'] = ['127.0.0.1:11211']
px['memcached']['listen'] = '127.0.0.1'
px['memcached']['memory_mb'] = 1024
# tempauth (users here, keys in the secrets) or keystone.
px['auth'] = 'tempauth'
# "account:user" => groups; .admin lets the user create containers in
# its own account, which Velox needs.
px['tempauth']['users'] = { 'velox:velox' => ['.admin'] }
px['tempauth']['token_life'] = 86400
px['keystone']['www_authenticate_uri'] = 'https://keystone.example.com:5000'
px['keystone']['auth_url'] = 'https://keystone.example.com:5000'
px['keystone']['username'] = 'swift'
px['keystone']['project_name'] = 'service'
px['keystone']['user_domain_id'] = 'default'
px['keystone']['project_domain_id'] = 'default'
px['keystone']['operator_roles'] = %w(admin member)

# --- rings (recipe velox_swift::rings, on one ring-builder node) ---
rings = default['velox_swift']['rings']
rings['part_power'] = 10
rings['replicas'] = 3
rings['min_part_hours'] = 1
# The storage nodes and their devices:
#   [{ 'ip' => '10.0.3.31', 'region' => 1, 'zone' => 1,
#      'devices' => { 'sdb1' => 100, 'sdc1' => 100 } }, ...]
# Ports are the storage ports above unless a node sets its own
# account_port, container_port or object_port.
rings['nodes'] = []
# Nodes that do not build rings fetch <ring>.ring.gz from here (wherever
# the ring-builder node publishes its swift_dir); nil leaves the ring
# files to you.
rings['url'] = nil
