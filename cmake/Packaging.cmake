# Service files (systemd unit, D-Bus policy, sysusers.d entry, default
# configuration) and the Debian package (`cpack -G DEB` in the build
# directory). See docs/PACKAGING.md.
#
# Paths written into the unit and the man pages are those of the configured
# prefix; the project defaults to /usr (sysconfdir /etc), which is what the
# .deb needs. `cmake --install --prefix OTHER` (tests, local installs) puts
# every file under OTHER and never touches /etc or /lib of the host: the
# destinations outside the prefix are chosen at install time, below.

set(HUGINN_FULL_SBINDIR "${CMAKE_INSTALL_FULL_SBINDIR}")
set(HUGINN_FULL_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")

# Where systemd looks for system units (Debian 12: /lib/systemd/system).
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND AND NOT HUGINN_SYSTEMD_UNITDIR)
  pkg_get_variable(_huginn_unitdir systemd systemdsystemunitdir)
endif()
if(NOT _huginn_unitdir)
  set(_huginn_unitdir /lib/systemd/system)
endif()
set(HUGINN_SYSTEMD_UNITDIR "${_huginn_unitdir}" CACHE PATH "systemd system unit directory (used when the install prefix is /usr)")

configure_file(${PROJECT_SOURCE_DIR}/systemd/huginn-proxy.service.in
               ${CMAKE_BINARY_DIR}/systemd/huginn-proxy.service @ONLY)

# Inside the prefix: D-Bus system bus policy and the sysusers.d entry
# (/usr/share/dbus-1/system.d, /usr/lib/sysusers.d for the package).
install(FILES ${PROJECT_SOURCE_DIR}/etc/dbus-1/org.huginn.Proxy1.conf
        DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/system.d)
install(FILES ${PROJECT_SOURCE_DIR}/etc/sysusers.d/huginn-proxy.conf
        DESTINATION lib/sysusers.d)

# Outside the prefix for /usr only: the unit and /etc/huginn-proxy/config.toml
# (the commented example, a conffile of the package). Decided when installing,
# from the prefix in force then; file(INSTALL) honours DESTDIR.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_huginn_unit_dest \"${HUGINN_SYSTEMD_UNITDIR}\")
    set(_huginn_etc_dest \"/etc/huginn-proxy\")
  else()
    set(_huginn_unit_dest \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
    set(_huginn_etc_dest \"\${CMAKE_INSTALL_PREFIX}/etc/huginn-proxy\")
  endif()
  file(INSTALL DESTINATION \"\${_huginn_unit_dest}\" TYPE FILE
       FILES \"${CMAKE_BINARY_DIR}/systemd/huginn-proxy.service\")
  file(INSTALL DESTINATION \"\${_huginn_etc_dest}\" TYPE FILE RENAME config.toml
       FILES \"${PROJECT_SOURCE_DIR}/etc/config.example.toml\")
")

# --- Debian package -----------------------------------------------------------
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "huginn-proxy: install prefix is ${CMAKE_INSTALL_PREFIX}; "
                 "the .deb is meant to be built with -DCMAKE_INSTALL_PREFIX=/usr (the default)")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME huginn-proxy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "huginn-proxy")
set(CPACK_PACKAGE_CONTACT "huginn-proxy maintainers <maintainers@huginn-proxy.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "fingerprinting reverse proxy (JA4, HTTP/2 Akamai, p0f TCP)")
set(CPACK_PACKAGE_DESCRIPTION
    "huginn-proxy terminates HTTP/1.1 and HTTP/2, routes to HTTP backends and passively
fingerprints every client (TLS ClientHello JA4 family, HTTP/2 preface, TCP SYN p0f v3),
handing the fingerprints to the backends as request headers. A root supervisor binds the
listeners and watches sandboxed, capability-free workers; an optional helper loads an XDP
SYN recorder. The package installs a hardened systemd unit (not enabled), a D-Bus policy
and the `huginn` user.")
# The .deb places files relative to /usr, with DESTDIR staging so that the
# install-time destinations above (/etc, /lib/systemd/system) land right.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_STRIP_FILES ON)
# huginn-proxy_<version>_<arch>.deb
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from dpkg-shlibdeps; the maintainer scripts need
# systemd-sysusers (or adduser as the fallback).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dbus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
include(CPack)
