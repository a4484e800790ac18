#
# Recipe:: velox_swift::storage
#
# A storage node: account, container and object servers on the devices
# under devices_dir, their replicators, auditors and updaters, and the
# rsync daemon replication uses.
include_recipe 'velox_swift::common'

swift_dir = node['velox_swift']['swift_dir']
swift_user = node['velox_swift']['user']
swift_group = node['velox_swift']['group']
st = node['velox_swift']['storage']

package %w(swift-account swift-container swift-object rsync)

directory st['devices_dir'] do
  owner swift_user
  group swift_group
  mode '0755'
end

# With mount_check the devices are mount points of real disks, prepared by
# you; a directory made here would be written to while its disk is missing.
unless st['mount_check']
  st['devices'].each do |dev|
    directory "#{st['devices_dir']}/#{dev}" do
      owner swift_user
      group swift_group
      mode '0755'
    end
  end
end

servers = {
  'account' => %w(swift-account swift-account-replicator swift-account-auditor swift-account-reaper),
  'container' => %w(swift-container swift-container-replicator swift-container-updater swift-container-auditor),
  'object' => %w(swift-object swift-object-replicator swift-object-updater swift-object-auditor),
}

servers.each_key do |srv|
  template "#{swift_dir}/#{srv}-server.conf" do
    source "#{srv}-server.conf.erb"
    owner 'root'
    group swift_group
    mode '0640'
  end
end

template '/etc/rsyncd.conf' do
  source 'rsyncd.conf.erb'
  owner 'root'
  group 'root'
  mode '0644'
end

service 'rsync' do
  action [:enable, :start]
  subscribes :restart, 'template[/etc/rsyncd.conf]', :delayed
end

# Debian's units refuse to start before the rings exist.
rings_present = lambda do
  VeloxSwiftCookbook::RINGS.all? { |r| ::File.exist?("#{swift_dir}/#{r}.ring.gz") }
end

servers.each do |srv, units|
  units.each do |unit|
    service unit do
      action [:enable, :start]
      only_if { rings_present.call }
      subscribes :restart, "template[#{swift_dir}/#{srv}-server.conf]", :delayed
      subscribes :restart, "template[#{swift_dir}/swift.conf]", :delayed
    end
  end
end
