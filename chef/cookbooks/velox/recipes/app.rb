#
# Recipe:: velox::app
#
# A stateless app node: velox serve under systemd, configured by
# /etc/velox/velox.yaml and secret files (mode 0600) from the data bag.
# Every app node behind one proxy needs the same master keys and session
# key, so both are required here rather than generated on each node.
include_recipe 'velox::install'

app = node['velox']['app']
dir = node['velox']['config_dir']
user_name = node['velox']['user']
group_name = node['velox']['group']
secrets = VeloxCookbook.secrets(self)

required = %w(master_keys session_key)
required << 'swift_key' if app['storage']['backend'] == 'swift'
required << 'db_dsn' if app['db']['driver'] == 'postgres'
required << 'ldap_bind_password' if app['auth']['providers'].include?('ldap')
missing = required.reject { |k| secrets[k].is_a?(String) && !secrets[k].strip.empty? }
unless missing.empty?
  raise "velox::app: missing secrets #{missing.join(', ')} (data bag item " \
        "#{node['velox']['secrets']['data_bag']}/#{node['velox']['secrets']['data_bag_item']}, see README.md)"
end
unless secrets['session_key'].strip =~ /\A\h{128}\z/
  raise 'velox::app: session_key must be 128 hex digits (head -c64 /dev/urandom | od -An -tx1 | tr -d " \n")'
end

# One file per secret; velox.yaml names the files, never the values.
files = {
  'master_keys' => "#{dir}/master.keys",
  'session_key' => "#{dir}/session.key",
}
files['swift_key'] = "#{dir}/swift.key" if required.include?('swift_key')
files['db_dsn'] = "#{dir}/db.dsn" if required.include?('db_dsn')
files['ldap_bind_password'] = "#{dir}/ldap-bind-password" if required.include?('ldap_bind_password')
env_file = "#{dir}/velox.env"

files.each do |key, path|
  file path do
    content secrets[key].strip + "\n"
    owner user_name
    group group_name
    mode '0600'
    sensitive true
    notifies :restart, 'service[velox]', :delayed
  end
end

# The administrator's password for the first start of an empty database;
# without it velox prints a one-time password to the journal.
if secrets['admin_password']
  file env_file do
    content "VELOX_ADMIN_PASSWORD=#{secrets['admin_password']}\n"
    owner 'root'
    group 'root'
    mode '0600'
    sensitive true
  end
end

directory app['data'] do
  owner user_name
  group group_name
  mode '0700'
end

template "#{dir}/velox.yaml" do
  source 'velox.yaml.erb'
  owner 'root'
  group group_name
  mode '0640'
  helpers VeloxCookbook::TemplateHelpers
  variables(files: files)
  notifies :restart, 'service[velox]', :delayed
end

execute 'velox-systemd-reload' do
  command 'systemctl daemon-reload'
  action :nothing
end

template '/etc/systemd/system/velox.service' do
  source 'velox.service.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    user: user_name,
    group: group_name,
    binary: node['velox']['install']['path'],
    config: "#{dir}/velox.yaml",
    env_file: env_file,
    data: app['data'],
    stop_timeout: VeloxCookbook.duration_seconds(app['http']['shutdown_timeout']) + 30
  )
  notifies :run, 'execute[velox-systemd-reload]', :immediately
  notifies :restart, 'service[velox]', :delayed
end

service 'velox' do
  action [:enable, :start]
  subscribes :restart, "remote_file[#{node['velox']['install']['path']}]", :delayed
end
