#
# Recipe:: velox::proxy
#
# The proxy node: velox proxy under systemd with /etc/velox/proxy.yaml and
# its certificates. Configuration changes are applied with SIGHUP (no
# dropped connections); renewed certificate files are picked up by the
# proxy itself.
include_recipe 'velox::install'

conf = node['velox']['proxy']
dir = node['velox']['config_dir']
tls_dir = conf['tls']['dir']
binary = node['velox']['install']['path']
user_name = node['velox']['user']
group_name = node['velox']['group']

directory tls_dir do
  owner user_name
  group group_name
  mode '0750'
end

certificates =
  case conf['tls']['source']
  when 'dev-cert'
    # Made once; a development CA, not for production.
    execute 'velox-proxy-dev-cert' do
      command "#{binary} proxy dev-cert --out #{tls_dir} --hosts #{conf['tls']['dev_cert_hosts'].join(',')}"
      user user_name
      creates "#{tls_dir}/cert.pem"
    end
    [{ 'cert' => "#{tls_dir}/cert.pem", 'key' => "#{tls_dir}/key.pem", 'hosts' => [] }]
  when 'data_bag'
    tls = VeloxCookbook.secrets(self, 'tls_data_bag_item')
    certs = tls['certificates'] || []
    raise 'velox::proxy: the TLS data bag item has no certificates' if certs.empty?
    certs.map do |c|
      name = c['name'] or raise 'velox::proxy: every certificate in the TLS data bag item needs a name'
      paths = { 'cert' => "#{tls_dir}/#{name}.pem", 'key' => "#{tls_dir}/#{name}-key.pem" }
      paths.each do |kind, path|
        file path do
          content c[kind]
          owner user_name
          group group_name
          mode kind == 'key' ? '0600' : '0644'
          sensitive kind == 'key'
        end
      end
      paths.merge('hosts' => c['hosts'] || [])
    end
  when 'files'
    certs = VeloxCookbook.plain(conf['tls']['certificates'])
    raise "velox::proxy: tls source 'files' needs node['velox']['proxy']['tls']['certificates']" if certs.empty?
    certs
  else
    raise "velox::proxy: tls source must be dev-cert, data_bag or files, not #{conf['tls']['source'].inspect}"
  end

# Pools without targets are left out, with their routes, so one attribute
# set serves nodes with and without a Swift pool.
upstreams = VeloxCookbook.plain(conf['upstreams']).reject { |_, pool| (pool['targets'] || []).empty? }
routes = VeloxCookbook.plain(conf['routes']).select { |r| upstreams.key?(r['upstream']) }
raise 'velox::proxy: no upstream pool has targets' if upstreams.empty?

template "#{dir}/proxy.yaml" do
  source 'proxy.yaml.erb'
  owner 'root'
  group group_name
  mode '0640'
  helpers VeloxCookbook::TemplateHelpers
  variables(certificates: certificates, upstreams: upstreams, routes: routes)
  # Refuses a file velox would refuse (unknown keys, bad routes, missing
  # certificate files) before it replaces the running one.
  verify "#{binary} proxy check --config %{path}"
  notifies :reload, 'service[velox-proxy]', :delayed
end

execute 'velox-proxy-systemd-reload' do
  command 'systemctl daemon-reload'
  action :nothing
end

template '/etc/systemd/system/velox-proxy.service' do
  source 'velox-proxy.service.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    user: user_name,
    group: group_name,
    binary: binary,
    config: "#{dir}/proxy.yaml",
    stop_timeout: VeloxCookbook.duration_seconds(conf['shutdown_timeout']) + 30
  )
  notifies :run, 'execute[velox-proxy-systemd-reload]', :immediately
  notifies :restart, 'service[velox-proxy]', :delayed
end

service 'velox-proxy' do
  supports reload: true, restart: true
  action [:enable, :start]
  subscribes :restart, "remote_file[#{binary}]", :delayed
end
