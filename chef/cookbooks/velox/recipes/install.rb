#
# Recipe:: velox::install
#
# The velox user and group, the configuration directory, and the velox
# binary (one static binary: velox serve, velox proxy and velox admin).
url = node['velox']['install']['url']
if url.nil? || url.empty?
  raise "velox: set node['velox']['install']['url'] to where the velox binary is " \
        "(https://... or file:///path), and ['checksum'] to its SHA-256"
end
Chef::Log.warn("velox: no ['velox']['install']['checksum']; #{url} is installed unchecked") unless node['velox']['install']['checksum']

user_name = node['velox']['user']
group_name = node['velox']['group']

group group_name do
  system true
end

user user_name do
  gid group_name
  system true
  home node['velox']['app']['data']
  shell '/usr/sbin/nologin'
  comment 'Velox'
end

# root owns the configuration; the service reads it through its group.
directory node['velox']['config_dir'] do
  owner 'root'
  group group_name
  mode '0750'
end

remote_file node['velox']['install']['path'] do
  source url
  checksum node['velox']['install']['checksum'] if node['velox']['install']['checksum']
  owner 'root'
  group 'root'
  mode '0755'
end
