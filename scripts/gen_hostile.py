#!/usr/bin/env python3
"""Full-size hostile captures for docs/robustness.md (the tests generate the same shapes at a reduced size).

Usage: gen_hostile.py syn|holes|dns COUNT OUT.pcap
  syn:   COUNT half-open SYNs from distinct 10.0.0.0/8 sources, 10,000 a second (all live at once)
  holes: COUNT streams, each a SYN and two 1-byte segments past holes that never fill (offsets 1,000 and 2,000)
  dns:   COUNT DNS answers, each another name (hN.example.com) and address (11.x.y.z)
"""
import struct, sys
def csum(b):
    if len(b)%2: b+=b'\0'
    s=sum(struct.unpack('>%dH'%(len(b)//2),b))
    while s>>16: s=(s&0xffff)+(s>>16)
    return (~s)&0xffff
def ip(src,dst,proto,payload,ident=1):
    h=struct.pack('>BBHHHBBH4s4s',0x45,0,20+len(payload),ident&0xffff,0,64,proto,0,src,dst)
    h=h[:10]+struct.pack('>H',csum(h))+h[12:]
    return h+payload
def tcp(src,dst,sp,dp,seq,flags,payload=b''):
    t=struct.pack('>HHIIBBHHH',sp,dp,seq&0xffffffff,0,5<<4,flags,64240,0,0)+payload
    c=csum(src+dst+struct.pack('>BBH',0,6,len(t))+t)
    t=t[:16]+struct.pack('>H',c)+t[18:]
    return ip(src,dst,6,t)
def udp(src,dst,sp,dp,payload):
    u=struct.pack('>HHHH',sp,dp,8+len(payload),0)+payload
    c=csum(src+dst+struct.pack('>BBH',0,17,len(u))+u) or 0xffff
    u=u[:6]+struct.pack('>H',c)+u[8:]
    return ip(src,dst,17,u)
eth=b'\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00'
def rec(out,t,frame):
    out.write(struct.pack('<IIII',1700000000+int(t),int((t%1)*1e6),len(frame),len(frame))+frame)
kind,n,path=sys.argv[1],int(sys.argv[2]),sys.argv[3]
out=open(path,'wb'); out.write(struct.pack('<IHHiIII',0xa1b2c3d4,2,4,0,0,65535,1))
if kind=='syn':
    srv=bytes([192,0,2,1])
    for i in range(n):
        src=bytes([10])+((i*2654435761)&0xffffff).to_bytes(3,'big')
        rec(out,i/10000,eth+tcp(src,srv,1024+i%60000,443,(i*40503)&0xffffffff,2))
elif kind=='holes':
    srv=bytes([198,51,100,1])
    for i in range(n):
        cl=bytes([10,(i>>16)&255,(i>>8)&255,i&255]); isn=(i*7919)&0xffffffff; sp=10000+i%50000; t=i/10000
        rec(out,t,eth+tcp(cl,srv,sp,443,isn,2))
        for off in (1000,2000): rec(out,t,eth+tcp(cl,srv,sp,443,isn+1+off,0x18,b'A'))
elif kind=='dns':
    cl=bytes([192,0,2,10]); rs=bytes([192,0,2,53])
    for i in range(n):
        q=b''.join(bytes([len(l)])+l for l in (b'h%d'%i,b'example',b'com'))+b'\0'+struct.pack('>HH',1,1)
        r=struct.pack('>HHHHHH',i&0xffff,0x8180,1,1,0,0)+q+b'\xc0\x0c'+struct.pack('>HHIH',1,1,3600,4)+bytes([11,(i>>16)&255,(i>>8)&255,i&255])
        rec(out,i/10000,eth+udp(rs,cl,53,20000+i%40000,r))
