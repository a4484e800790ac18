#
# Recipe:: velox_swift::proxy
#
# A Swift proxy node: swift-proxy with tempauth or Keystone, and memcached.
include_recipe 'velox_swift::common'

swift_dir = node['velox_swift']['swift_dir']
swift_group = node['velox_swift']['group']
px = node['velox_swift']['proxy']
secrets = VeloxSwiftCookbook.secrets(self)

packages = %w(swift-proxy memcached)
packages << 'python3-keystonemiddleware' if px['auth'] == 'keystone'
package packages

vars = {}
case px['auth']
when 'tempauth'
  keys = secrets['tempauth'] || {}
  vars[:tempauth_users] = VeloxSwiftCookbook.plain(px['tempauth']['users']).map do |name, groups|
    # tempauth's user_<account>_<user> cannot tell an underscore in a name
    # from its separator.
    unless name =~ /\A[^:_\s]+:[^:_\s]+\z/
      raise "velox_swift::proxy: tempauth user #{name.inspect} must be account:user without underscores"
    end
    key = keys[name] or raise "velox_swift::proxy: no key for tempauth user #{name} in the secrets' tempauth"
    [name, { 'key' => key, 'groups' => groups }]
  end.to_h
when 'keystone'
  vars[:keystone_password] = secrets['keystone_password'] or
    raise 'velox_swift::proxy: the secret keystone_password is required with keystone'
else
  raise "velox_swift::proxy: auth must be tempauth or keystone, not #{px['auth'].inspect}"
end

template '/etc/memcached.conf' do
  source 'memcached.conf.erb'
  owner 'root'
  group 'root'
  mode '0644'
end

service 'memcached' do
  action [:enable, :start]
  subscribes :restart, 'template[/etc/memcached.conf]', :delayed
end

# It holds tempauth keys or the Keystone password.
template "#{swift_dir}/proxy-server.conf" do
  source 'proxy-server.conf.erb'
  owner 'root'
  group swift_group
  mode '0640'
  sensitive true
  variables(vars)
end

service 'swift-proxy' do
  action [:enable, :start]
  only_if { VeloxSwiftCookbook::RINGS.all? { |r| ::File.exist?("#{swift_dir}/#{r}.ring.gz") } }
  subscribes :restart, "template[#{swift_dir}/proxy-server.conf]", :delayed
  subscribes :restart, "template[#{swift_dir}/swift.conf]", :delayed
end
