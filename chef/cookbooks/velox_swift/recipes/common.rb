#
# Recipe:: velox_swift::common
#
# What every Swift node has: the packages' user and directories,
# swift.conf with the cluster's hash path secret, and the ring files.
swift_dir = node['velox_swift']['swift_dir']
swift_user = node['velox_swift']['user']
swift_group = node['velox_swift']['group']

# Creates the swift user and group that every server runs as.
package 'swift'

directory swift_dir do
  owner swift_user
  group swift_group
  mode '0755'
end

directory '/var/cache/swift' do
  owner swift_user
  group swift_group
  mode '0755'
end

prefix, suffix = VeloxSwiftCookbook.hash_path(self)
template "#{swift_dir}/swift.conf" do
  source 'swift.conf.erb'
  owner 'root'
  group swift_group
  mode '0640'
  sensitive true
  variables(prefix: prefix, suffix: suffix)
end

# Nodes other than the ring builder fetch the rings. The servers notice a
# changed ring file by themselves, so nothing restarts.
url = node['velox_swift']['rings']['url']
if url && !node.recipe?('velox_swift::rings')
  VeloxSwiftCookbook::RINGS.each do |ring|
    remote_file "#{swift_dir}/#{ring}.ring.gz" do
      source "#{url.chomp('/')}/#{ring}.ring.gz"
      owner swift_user
      group swift_group
      mode '0644'
    end
  end
end
